/**
 * PostgreSQL schema migrations (the SQLite ones are migrations.ts; the two schemas hold the same rows). The
 * schema version is the highest version in `layerloop_schema`; POSTGRES_MIGRATIONS is an ordered list, and a
 * later version only appends to it. A database newer than the code is refused with what to do about it.
 *
 * Several processes may open one database at once (API nodes, workers): each migration runs in its own
 * transaction under a transaction-level advisory lock and rereads the version inside it, so a step is applied
 * once. PostgreSQL's DDL is transactional: a failing step leaves nothing behind, its version row included.
 */
import type { Pool, PoolClient } from 'pg';
import { DEFAULT_USER_NAME, DEFAULT_WORKSPACE_NAME } from './accounts';
import { DEFAULT_USER_ID, DEFAULT_WORKSPACE_ID } from './store';
import { checkOrder } from './migrations';

export interface PostgresMigration {
  version: number;
  description: string;
  sql: string;
}

/** The advisory-lock namespace of this schema ('LL'); key 0 is the migration lock, others are instance locks. */
export const ADVISORY_LOCK_NAMESPACE = 0x4c4c;

export const POSTGRES_MIGRATIONS: readonly PostgresMigration[] = Object.freeze([
  {
    version: 1,
    description: 'documents, jobs, edit nodes',
    // As in SQLite: `seq` orders rows by creation (timestamps can tie), JSON columns hold the JSON text as written
    // (type json, not jsonb: kept exactly, parsed back with zod), and the composite keys make "a parent is in the
    // same document" and "a node's job is of the same document" constraints. `owner_key` names the store instance
    // (its advisory lock) that last moved a job, so recovery can tell a live process's jobs from a dead one's.
    sql: `
      CREATE TABLE documents (
        seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        id          uuid PRIMARY KEY,
        host        text NOT NULL CHECK (host IN ('figma', 'photoshop', 'web', 'cli')),
        host_key    text NOT NULL,
        created_at  timestamptz NOT NULL,
        UNIQUE (host, host_key)
      );

      CREATE TABLE jobs (
        seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id               uuid NOT NULL UNIQUE,
        document_id      uuid NOT NULL REFERENCES documents (id),
        state            text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        request          json NOT NULL,
        error            text,
        result_node_ids  json NOT NULL DEFAULT '[]',
        created_at       timestamptz NOT NULL,
        started_at       timestamptz,
        finished_at      timestamptz,
        owner_key        integer,
        UNIQUE (document_id, id)
      );
      CREATE INDEX jobs_unfinished ON jobs (seq) WHERE state IN ('queued', 'running');
      CREATE INDEX jobs_by_document ON jobs (document_id, seq);

      CREATE TABLE nodes (
        seq                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id                   uuid NOT NULL UNIQUE,
        document_id          uuid NOT NULL REFERENCES documents (id),
        parent_id            uuid,
        kind                 text NOT NULL CHECK (kind IN ('source', 'edit')),
        instruction          text,
        regions              json NOT NULL,
        options              json NOT NULL,
        seed                 bigint,
        variation            integer,
        source_image_sha256  text NOT NULL,
        result_image_sha256  text NOT NULL,
        latent               json,
        conditioning         text CHECK (conditioning IN ('latent', 'pixels')),
        job_id               uuid,
        created_at           timestamptz NOT NULL,
        UNIQUE (document_id, id),
        FOREIGN KEY (document_id, parent_id) REFERENCES nodes (document_id, id),
        FOREIGN KEY (document_id, job_id) REFERENCES jobs (document_id, id)
      );
      CREATE INDEX nodes_by_document ON nodes (document_id, seq);
      CREATE INDEX nodes_by_parent ON nodes (parent_id);
      CREATE INDEX nodes_by_job ON nodes (job_id, seq);

      -- one key per opened store (process); it holds pg_advisory_lock(namespace, key) while it lives
      CREATE SEQUENCE store_instance_keys AS integer MINVALUE 1 CYCLE;
    `,
  },
  {
    version: 2,
    description: 'users, workspaces, memberships, API tokens, blob grants; documents belong to a workspace, jobs and nodes to a user',
    // As in SQLite (migrations.ts, version 2): the default user and workspace hold what was made before, existing
    // nodes' blobs are granted to the default workspace (size unknown: 0), and a document's key becomes
    // (workspace, host, host key).
    sql: `
      CREATE TABLE workspaces (
        seq         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        id          uuid PRIMARY KEY,
        name        text NOT NULL UNIQUE,
        created_at  timestamptz NOT NULL
      );
      CREATE TABLE users (
        seq                   bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        id                    uuid PRIMARY KEY,
        name                  text NOT NULL UNIQUE,
        role                  text NOT NULL CHECK (role IN ('admin', 'member')),
        disabled              boolean NOT NULL DEFAULT false,
        default_workspace_id  uuid NOT NULL REFERENCES workspaces (id),
        created_at            timestamptz NOT NULL
      );
      CREATE TABLE memberships (
        user_id       uuid NOT NULL REFERENCES users (id),
        workspace_id  uuid NOT NULL REFERENCES workspaces (id),
        created_at    timestamptz NOT NULL,
        PRIMARY KEY (user_id, workspace_id)
      );
      CREATE INDEX memberships_by_workspace ON memberships (workspace_id);
      CREATE TABLE tokens (
        seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id          uuid NOT NULL UNIQUE,
        user_id     uuid NOT NULL REFERENCES users (id),
        name        text NOT NULL,
        hash        text NOT NULL,
        created_at  timestamptz NOT NULL,
        revoked_at  timestamptz
      );
      CREATE UNIQUE INDEX tokens_active_name ON tokens (user_id, name) WHERE revoked_at IS NULL;
      CREATE TABLE blob_grants (
        workspace_id  uuid NOT NULL REFERENCES workspaces (id),
        sha256        text NOT NULL,
        size          bigint NOT NULL,
        user_id       uuid NOT NULL REFERENCES users (id),
        created_at    timestamptz NOT NULL,
        PRIMARY KEY (workspace_id, sha256)
      );
      CREATE INDEX blob_grants_by_user ON blob_grants (user_id);

      INSERT INTO workspaces (id, name, created_at) VALUES ('${DEFAULT_WORKSPACE_ID}', '${DEFAULT_WORKSPACE_NAME}', now());
      INSERT INTO users (id, name, role, default_workspace_id, created_at) VALUES ('${DEFAULT_USER_ID}', '${DEFAULT_USER_NAME}', 'admin', '${DEFAULT_WORKSPACE_ID}', now());
      INSERT INTO memberships (user_id, workspace_id, created_at) VALUES ('${DEFAULT_USER_ID}', '${DEFAULT_WORKSPACE_ID}', now());

      ALTER TABLE documents ADD COLUMN workspace_id uuid NOT NULL DEFAULT '${DEFAULT_WORKSPACE_ID}' REFERENCES workspaces (id);
      ALTER TABLE documents ALTER COLUMN workspace_id DROP DEFAULT;
      ALTER TABLE documents DROP CONSTRAINT documents_host_host_key_key;
      ALTER TABLE documents ADD CONSTRAINT documents_workspace_host_key UNIQUE (workspace_id, host, host_key);
      ALTER TABLE jobs ADD COLUMN user_id uuid NOT NULL DEFAULT '${DEFAULT_USER_ID}' REFERENCES users (id);
      ALTER TABLE jobs ALTER COLUMN user_id DROP DEFAULT;
      ALTER TABLE nodes ADD COLUMN author_id uuid NOT NULL DEFAULT '${DEFAULT_USER_ID}' REFERENCES users (id);
      ALTER TABLE nodes ALTER COLUMN author_id DROP DEFAULT;

      INSERT INTO blob_grants (workspace_id, sha256, size, user_id, created_at)
        SELECT '${DEFAULT_WORKSPACE_ID}', sha256, 0, '${DEFAULT_USER_ID}', now() FROM (
          SELECT source_image_sha256 AS sha256 FROM nodes
          UNION SELECT result_image_sha256 FROM nodes
          UNION SELECT latent->>'sha256' FROM nodes WHERE latent IS NOT NULL
          UNION SELECT r->>'maskSha256' FROM nodes, json_array_elements(regions) AS r WHERE r->>'maskSha256' IS NOT NULL
        ) AS referenced
        ON CONFLICT DO NOTHING;
    `,
  },
]);

const VERSION_TABLE = `CREATE TABLE IF NOT EXISTS layerloop_schema (
  version     integer PRIMARY KEY,
  description text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now()
)`;

/** The schema version of the database `client` is connected to (0: none yet). */
export async function postgresSchemaVersion(client: Pool | PoolClient): Promise<number> {
  const table = await client.query<{ exists: boolean }>(`SELECT to_regclass('layerloop_schema') IS NOT NULL AS exists`);
  if (!table.rows[0].exists) return 0;
  const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM layerloop_schema');
  return rows[0].version ?? 0;
}

/** Applies the migrations the database has not seen yet; returns the version before and after. */
export async function migratePostgres(pool: Pool, migrations: readonly PostgresMigration[] = POSTGRES_MIGRATIONS): Promise<{ from: number; to: number }> {
  checkOrder(migrations);
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  const from = await postgresSchemaVersion(pool);
  if (from > latest) throw newerSchemaError(from, latest);
  const client = await pool.connect();
  try {
    for (const migration of migrations) {
      if (migration.version <= from) continue;
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock($1, 0)', [ADVISORY_LOCK_NAMESPACE]);
        await client.query(VERSION_TABLE);
        const now = await postgresSchemaVersion(client);
        if (now > latest) throw newerSchemaError(now, latest); // a newer server migrated meanwhile
        if (now < migration.version) {
          await client.query(migration.sql);
          await client.query('INSERT INTO layerloop_schema (version, description) VALUES ($1, $2)', [migration.version, migration.description]);
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    }
  } finally {
    client.release();
  }
  return { from, to: await postgresSchemaVersion(pool) };
}

function newerSchemaError(found: number, latest: number): Error {
  return new Error(
    `the database's schema version ${found} is newer than this server understands (${latest}): a newer layerloop has migrated it. ` +
      `Upgrade this server to that version (every process sharing the database must run it), or point --store at another database`,
  );
}
