/**
 * SQLite schema migrations. The schema version is PRAGMA user_version; MIGRATIONS is an ordered list, and a later
 * version only appends to it (ALTER TABLE … ADD COLUMN, new tables, new indexes). A database newer than the code
 * is refused rather than guessed at.
 *
 * Each migration runs in its own BEGIN IMMEDIATE transaction that also sets user_version, and rereads the version
 * inside it, so two processes opening a fresh file at once cannot both apply the same step.
 *
 * Foreign keys are on while migrating. A future migration that must rebuild a table (SQLite's 12-step ALTER)
 * has to switch them off outside its transaction first; none does today.
 */
import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  description: string;
  up(db: Database.Database): void;
}

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    description: 'documents, jobs, edit nodes',
    up(db: Database.Database): void {
      // `seq` orders rows by creation (timestamps can tie); ids are uuids. JSON columns are parsed back with zod.
      // The composite keys make "a parent is in the same document" and "a node's job is of the same document"
      // constraints rather than hopes.
      db.exec(`
        CREATE TABLE documents (
          id          TEXT PRIMARY KEY NOT NULL,
          host        TEXT NOT NULL CHECK (host IN ('figma', 'photoshop', 'web', 'cli')),
          host_key    TEXT NOT NULL,
          created_at  TEXT NOT NULL,
          UNIQUE (host, host_key)
        );

        CREATE TABLE jobs (
          seq              INTEGER PRIMARY KEY AUTOINCREMENT,
          id               TEXT NOT NULL UNIQUE,
          document_id      TEXT NOT NULL REFERENCES documents (id),
          state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
          request          TEXT NOT NULL,
          error            TEXT,
          result_node_ids  TEXT NOT NULL DEFAULT '[]',
          created_at       TEXT NOT NULL,
          started_at       TEXT,
          finished_at      TEXT,
          UNIQUE (document_id, id)
        );
        CREATE INDEX jobs_by_state ON jobs (state);
        CREATE INDEX jobs_by_document ON jobs (document_id, seq);

        CREATE TABLE nodes (
          seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
          id                   TEXT NOT NULL UNIQUE,
          document_id          TEXT NOT NULL REFERENCES documents (id),
          parent_id            TEXT,
          kind                 TEXT NOT NULL CHECK (kind IN ('source', 'edit')),
          instruction          TEXT,
          regions              TEXT NOT NULL,
          options              TEXT NOT NULL,
          seed                 INTEGER,
          variation            INTEGER,
          source_image_sha256  TEXT NOT NULL,
          result_image_sha256  TEXT NOT NULL,
          latent               TEXT,
          conditioning         TEXT CHECK (conditioning IN ('latent', 'pixels')),
          job_id               TEXT,
          created_at           TEXT NOT NULL,
          UNIQUE (document_id, id),
          FOREIGN KEY (document_id, parent_id) REFERENCES nodes (document_id, id),
          FOREIGN KEY (document_id, job_id) REFERENCES jobs (document_id, id)
        );
        CREATE INDEX nodes_by_document ON nodes (document_id, seq);
        CREATE INDEX nodes_by_parent ON nodes (parent_id);
        CREATE INDEX nodes_by_job ON nodes (job_id, seq);
      `);
    },
  },
]);

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/** Applies the migrations the database has not seen yet; returns the version before and after. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): { from: number; to: number } {
  checkOrder(migrations);
  const from = schemaVersion(db);
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  if (from > latest) {
    throw new Error(`database schema version ${from} is newer than this server understands (${latest}); upgrade the server`);
  }
  for (const migration of migrations) {
    if (migration.version <= from) continue;
    db.transaction(() => {
      if (schemaVersion(db) >= migration.version) return; // another process got here first
      migration.up(db);
      // user_version lives in the database header and is written by this transaction, so it rolls back with it
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
  return { from, to: schemaVersion(db) };
}

/** Throws unless the list is numbered 1, 2, 3… in order (also used by postgres-migrations.ts). */
export function checkOrder(migrations: readonly { version: number }[]): void {
  migrations.forEach((migration, i) => {
    if (!Number.isInteger(migration.version) || migration.version !== i + 1) {
      throw new Error(`migrations must be numbered 1, 2, 3… in order: entry ${i} has version ${migration.version}`);
    }
  });
}
