/**
 * SQLite schema migrations. The schema version is PRAGMA user_version; MIGRATIONS is an ordered list, and a later
 * version only appends to it (ALTER TABLE … ADD COLUMN, new tables, new indexes). A database newer than the code
 * is refused rather than guessed at.
 *
 * Each migration runs in its own BEGIN IMMEDIATE transaction that also sets user_version, and rereads the version
 * inside it, so two processes opening a fresh file at once cannot both apply the same step.
 *
 * Foreign keys are on while migrating, except around a migration that rebuilds a table (SQLite's 12-step
 * ALTER, `rebuildsTables`): they are switched off outside its transaction and checked before it commits.
 */
import type Database from 'better-sqlite3';
import { DEFAULT_USER_NAME, DEFAULT_WORKSPACE_NAME } from './accounts';
import { DEFAULT_USER_ID, DEFAULT_WORKSPACE_ID } from './store';

export interface Migration {
  version: number;
  description: string;
  /**
   * Rebuilds a table (SQLite's 12-step ALTER): foreign keys are switched off around its transaction, and
   * foreign_key_check must find nothing before it commits.
   */
  rebuildsTables?: boolean;
  up(db: Database.Database): void;
}

const DEFAULT_WORKSPACE = `'${DEFAULT_WORKSPACE_ID}'`;
const DEFAULT_USER = `'${DEFAULT_USER_ID}'`;
const NOW = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;

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
  {
    version: 2,
    description: 'users, workspaces, memberships, API tokens, blob grants; documents belong to a workspace, jobs and nodes to a user',
    rebuildsTables: true,
    up(db: Database.Database): void {
      // The default user and workspace hold everything made before accounts existed (and what the shared-token and
      // token-less modes make). Existing blobs that nodes reference are granted to the default workspace; an upload
      // no node references yet is granted again when it is uploaded again. Their size is unknown here: 0.
      // documents is rebuilt because its key becomes (workspace, host, host key): two workspaces opening the same
      // Figma file get two documents, and neither learns of the other.
      db.exec(`
        CREATE TABLE workspaces (
          id          TEXT PRIMARY KEY NOT NULL,
          name        TEXT NOT NULL UNIQUE,
          created_at  TEXT NOT NULL
        );
        CREATE TABLE users (
          id                    TEXT PRIMARY KEY NOT NULL,
          name                  TEXT NOT NULL UNIQUE,
          role                  TEXT NOT NULL CHECK (role IN ('admin', 'member')),
          disabled              INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
          default_workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
          created_at            TEXT NOT NULL
        );
        CREATE TABLE memberships (
          user_id       TEXT NOT NULL REFERENCES users (id),
          workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
          created_at    TEXT NOT NULL,
          PRIMARY KEY (user_id, workspace_id)
        );
        CREATE INDEX memberships_by_workspace ON memberships (workspace_id);
        CREATE TABLE tokens (
          seq         INTEGER PRIMARY KEY AUTOINCREMENT,
          id          TEXT NOT NULL UNIQUE,
          user_id     TEXT NOT NULL REFERENCES users (id),
          name        TEXT NOT NULL,
          hash        TEXT NOT NULL,
          created_at  TEXT NOT NULL,
          revoked_at  TEXT
        );
        CREATE UNIQUE INDEX tokens_active_name ON tokens (user_id, name) WHERE revoked_at IS NULL;
        CREATE TABLE blob_grants (
          workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
          sha256        TEXT NOT NULL,
          size          INTEGER NOT NULL,
          user_id       TEXT NOT NULL REFERENCES users (id),
          created_at    TEXT NOT NULL,
          PRIMARY KEY (workspace_id, sha256)
        );
        CREATE INDEX blob_grants_by_user ON blob_grants (user_id);

        INSERT INTO workspaces (id, name, created_at) VALUES (${DEFAULT_WORKSPACE}, '${DEFAULT_WORKSPACE_NAME}', ${NOW});
        INSERT INTO users (id, name, role, default_workspace_id, created_at) VALUES (${DEFAULT_USER}, '${DEFAULT_USER_NAME}', 'admin', ${DEFAULT_WORKSPACE}, ${NOW});
        INSERT INTO memberships (user_id, workspace_id, created_at) VALUES (${DEFAULT_USER}, ${DEFAULT_WORKSPACE}, ${NOW});

        CREATE TABLE documents_v2 (
          id            TEXT PRIMARY KEY NOT NULL,
          workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
          host          TEXT NOT NULL CHECK (host IN ('figma', 'photoshop', 'web', 'cli')),
          host_key      TEXT NOT NULL,
          created_at    TEXT NOT NULL,
          UNIQUE (workspace_id, host, host_key)
        );
        INSERT INTO documents_v2 (id, workspace_id, host, host_key, created_at)
          SELECT id, ${DEFAULT_WORKSPACE}, host, host_key, created_at FROM documents ORDER BY rowid;
        DROP TABLE documents;
        ALTER TABLE documents_v2 RENAME TO documents;
        CREATE INDEX documents_by_workspace ON documents (workspace_id);

        ALTER TABLE jobs ADD COLUMN user_id TEXT NOT NULL DEFAULT ${DEFAULT_USER} REFERENCES users (id);
        ALTER TABLE nodes ADD COLUMN author_id TEXT NOT NULL DEFAULT ${DEFAULT_USER} REFERENCES users (id);

        INSERT OR IGNORE INTO blob_grants (workspace_id, sha256, size, user_id, created_at)
          SELECT ${DEFAULT_WORKSPACE}, sha256, 0, ${DEFAULT_USER}, ${NOW} FROM (
            SELECT source_image_sha256 AS sha256 FROM nodes
            UNION SELECT result_image_sha256 FROM nodes
            UNION SELECT json_extract(latent, '$.sha256') FROM nodes WHERE latent IS NOT NULL
            UNION SELECT json_extract(r.value, '$.maskSha256') FROM nodes, json_each(nodes.regions) AS r
              WHERE json_extract(r.value, '$.maskSha256') IS NOT NULL
          );
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
    const foreignKeys = db.pragma('foreign_keys', { simple: true }) === 1;
    if (migration.rebuildsTables && foreignKeys) db.pragma('foreign_keys = OFF'); // a no-op inside a transaction
    try {
      db.transaction(() => {
        if (schemaVersion(db) >= migration.version) return; // another process got here first
        migration.up(db);
        if (migration.rebuildsTables) {
          const broken = db.pragma('foreign_key_check') as unknown[];
          if (broken.length > 0) throw new Error(`migration ${migration.version} (${migration.description}) would break ${broken.length} foreign keys: nothing was changed`);
        }
        // user_version lives in the database header and is written by this transaction, so it rolls back with it
        db.pragma(`user_version = ${migration.version}`);
      }).immediate();
    } finally {
      if (migration.rebuildsTables && foreignKeys) db.pragma('foreign_keys = ON');
    }
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
