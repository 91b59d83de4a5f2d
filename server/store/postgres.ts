/**
 * PostgresEditStore: the EditStore on PostgreSQL, for a team server whose processes share one database
 * (`--store postgres://…`). Same contract, rows and rules as SqliteEditStore (rows.ts, rules.ts, and the contract
 * suite in test/unit/store/contract.ts); what differs is how the guarantees are had:
 *
 * - Transactions run at READ COMMITTED and lock what they decide on: a job's row (FOR UPDATE) before a
 *   transition or before adding its results, a document's row (FOR NO KEY UPDATE) before adding a source node, so
 *   concurrent callers in other processes queue up instead of both deciding on a stale read. The UPDATE of a
 *   job repeats the state it read (compare-and-set) all the same.
 * - Reads that must be one snapshot (history, integrityCheck) run in a REPEATABLE READ READ ONLY transaction.
 * - Several processes may share the database, so recoverInterruptedJobs cannot fail every unfinished job as the
 *   embedded store does. Each open store takes a session advisory lock on a key of its own and stamps that key
 *   on the jobs it creates and moves (owner_key); recovery fails only the unfinished jobs whose owner's lock is
 *   free (its process is gone: PostgreSQL drops a session's locks with its connection) and this store's own.
 *
 * - A statement the database cannot run for reasons of its own (it cannot be reached, the connection broke, its
 *   disk is full, it is read-only) throws StoreError 'unavailable' / 'full' in words for users (databaseFailure;
 *   the pg error is the cause, for the log), and is reported by health() until the database answers again (a
 *   lost connection: health() asks it) or, for the others, until a write works.
 *
 * Written with `pg` and plain SQL rather than a query builder shared with SQLite: the two stores already share
 * their rows and rules (rows.ts, rules.ts), and what remains differs in the places that matter (locking,
 * snapshots, placeholders, upserts), which a common builder would hide rather than remove.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { z } from 'zod';
import { ADVISORY_LOCK_NAMESPACE, migratePostgres, postgresSchemaVersion } from './postgres-migrations';
import { type NodeColumns, editNodeColumns, sourceNodeColumns, toDocument, toJob, toNode } from './rows';
import { PostgresAccountStore } from './postgres-accounts';
import { TERMINAL_STATES, blobRefs, blobSizes, checkRows, checkTransition, grantsOf, requireBlobs, successResults } from './rules';
import {
  type AddEditNodesOptions,
  type BlobStore,
  CreateJobInput,
  DEFAULT_WORKSPACE_ID,
  type CreateJobInput as CreateJobInputType,
  type Document,
  type EditNode,
  EditNodeInput,
  type EditNodeInput as EditNodeInputType,
  type EditStore,
  Host,
  HostDocumentKey,
  type History,
  INTERRUPTED_QUEUED_ERROR,
  INTERRUPTED_RUNNING_ERROR,
  Id,
  type IntegrityOptions,
  type IntegrityProblem,
  type Job,
  JobFilter,
  type JobFilter as JobFilterType,
  JobState,
  JobUpdate,
  type JobUpdate as JobUpdateType,
  SourceNodeInput,
  type SourceNodeInput as SourceNodeInputType,
  StoreError,
  type StoreHealth,
  parseOrThrow,
} from './store';

export interface PostgresEditStoreOptions {
  /** Clock for createdAt/startedAt/finishedAt (tests pin it). */
  now?: () => Date;
  /** Connections in the pool (default 10). */
  maxConnections?: number;
  /** Told about connection trouble no caller is waiting for: an idle connection dropped, the instance lock lost. */
  onError?: (message: string, error: Error) => void;
}

/** A refusal to start: the URL, the server or the database is not usable; `message` says what to fix. */
export class PostgresConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PostgresConfigError';
  }
}

/**
 * Rows come back as SQLite hands them over (rows.ts): JSON as its text, timestamps as ISO-8601, bigints as
 * numbers. A value that does not fit (a bigint past 2^53, an 'infinity' timestamp) stays text, so the row's
 * zod schema reports it as corrupt instead of a wrong number being used.
 */
const TYPES = {
  getTypeParser(oid: number, format?: string): (value: string) => unknown {
    switch (oid) {
      case pg.types.builtins.INT8:
        return (value) => (Number.isSafeInteger(Number(value)) ? Number(value) : value);
      case pg.types.builtins.TIMESTAMPTZ: {
        const toDate = pg.types.getTypeParser(oid, 'text') as (value: string) => Date | number; // ±Infinity for 'infinity'
        return (value) => {
          const date = toDate(value);
          return date instanceof Date && Number.isFinite(date.getTime()) ? date.toISOString() : value;
        };
      }
      case pg.types.builtins.JSON:
        return (value) => value;
      default:
        return pg.types.getTypeParser(oid, format === 'binary' ? 'binary' : 'text') as (value: string) => unknown;
    }
  },
};

/** pg's connection-level errors, in words an operator can act on. */
function describeConnectError(error: Error & { code?: string }, where: string): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return `nothing accepts connections at ${where}: is PostgreSQL running there, and is the host and port in --store (LAYERLOOP_STORE) right?`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `the host in ${where} cannot be resolved: fix the host name in --store (LAYERLOOP_STORE)`;
    case '28P01':
    case '28000':
      return `PostgreSQL at ${where} refused the login (${error.message}): fix the user and password in --store (LAYERLOOP_STORE)`;
    case '3D000':
      return `${error.message} at ${where}: create it (createdb NAME, or CREATE DATABASE) or fix the database name in --store (LAYERLOOP_STORE)`;
    default:
      return `cannot connect to PostgreSQL at ${where}: ${error.message}`;
  }
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

type Row = Record<string, unknown>;

/** What runs statements: the pool, or one connection in a transaction; errors come out as databaseFailure says. */
export interface Queryable {
  query<R extends pg.QueryResultRow = Row>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** How long health() waits for the database to answer after a lost connection. */
const PROBE_TIMEOUT_MS = 3_000;

/** pg's own messages for a connection that broke or never came (they carry no SQLSTATE). */
const CONNECTION_LOST = /Connection terminated|connection error|Client has encountered a connection error|timeout exceeded when trying to connect/i;

/**
 * A pg error that is the database's failure rather than the statement's, as the StoreError users read: 'full'
 * (disk_full), else 'unavailable' with why (the connection: `connection` true). Null for anything else (a
 * constraint, a bug): that error stays as it is.
 */
function databaseFailure(error: unknown): { error: StoreError; connection: boolean } | null {
  if (error instanceof StoreError) return null;
  const { code = '', message = '' } = (error ?? {}) as { code?: unknown; message?: unknown };
  const sqlstate = String(code);
  const fail = (storeCode: 'full' | 'unavailable', text: string, connection = false) => ({ error: new StoreError(storeCode, text, { cause: error }), connection });
  if (sqlstate === '53100') return fail('full', `the server's database is full`);
  const unavailable = (why: string, connection = false) => fail('unavailable', `the server cannot use its database right now: ${why}`, connection);
  if (sqlstate === '25006') return unavailable('it is read-only');
  if (sqlstate === '58030') return unavailable('its disk reports I/O errors');
  if (sqlstate === '53200') return unavailable('it is out of memory');
  if (sqlstate === '53300') return unavailable('it has no connection to spare', true);
  if (sqlstate.startsWith('08') || sqlstate.startsWith('57P') || /^E[A-Z]+$/.test(sqlstate) || CONNECTION_LOST.test(String(message))) {
    return unavailable('it cannot be reached', true);
  }
  return null;
}

const NODE_INSERT = `INSERT INTO nodes (id, document_id, parent_id, kind, instruction, regions, options, seed, variation,
    source_image_sha256, result_image_sha256, latent, conditioning, job_id, author_id, created_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`;

function nodeValues(c: NodeColumns): unknown[] {
  return [
    c.id,
    c.documentId,
    c.parentId,
    c.kind,
    c.instruction,
    c.regions,
    c.options,
    c.seed,
    c.variation,
    c.sourceImageSha256,
    c.resultImageSha256,
    c.latent,
    c.conditioning,
    c.jobId,
    c.authorId,
    c.createdAt,
  ];
}

/** The unfinished jobs recovery may fail: this store's, unowned ones, and those whose owner's lock is free. */
const STRANDED_JOBS = `
  SELECT j.* FROM jobs j
  WHERE j.state IN ('queued', 'running')
    AND (j.owner_key IS NULL OR j.owner_key = $2 OR NOT EXISTS (
      SELECT 1 FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = $1::integer::oid AND l.objid = j.owner_key::oid))
  ORDER BY j.seq
  FOR UPDATE OF j`;

export class PostgresEditStore implements EditStore {
  readonly accounts: PostgresAccountStore;
  private readonly now: () => Date;
  private closed = false;
  /** single statements, each on a connection from the pool */
  private readonly db: Queryable = { query: (sql, values) => this.onPool(sql, values) };
  /** the database's last failure (health): a lost connection until it answers again, others until a write works */
  private failure: { error: StoreError; connection: boolean } | null = null;
  /** health()'s question to the database in flight, shared by concurrent calls */
  private probing: Promise<void> | null = null;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly blobs: BlobStore,
    private readonly lock: InstanceLock,
    options: PostgresEditStoreOptions,
  ) {
    this.now = options.now ?? (() => new Date());
    this.accounts = new PostgresAccountStore(this.db, (fn) => this.transaction(fn), this.now);
  }

  /**
   * Connects, migrates the schema and takes this instance's lock. Throws PostgresConfigError when the server
   * cannot be reached or logged into, the database is missing, or its schema is newer than this code.
   */
  static async open(url: string, blobs: BlobStore, options: PostgresEditStoreOptions = {}): Promise<PostgresEditStore> {
    const where = redactUrl(url);
    const onError = options.onError ?? (() => {});
    const config: pg.PoolConfig = { connectionString: url, max: options.maxConnections ?? 10, connectionTimeoutMillis: 10_000, application_name: 'layerloop', types: TYPES };
    const pool = new pg.Pool(config);
    // an idle connection that breaks (a server restart) is replaced on next use; without a listener it would crash the process
    pool.on('error', (error) => onError('a PostgreSQL connection failed while idle', error));
    try {
      await pool.query('SELECT 1').catch((error: Error) => {
        throw new PostgresConfigError(describeConnectError(error, where));
      });
      await migratePostgres(pool).catch((error: Error) => {
        throw new PostgresConfigError(`cannot prepare the database ${where}: ${error.message}`);
      });
      const lock = await InstanceLock.take(pool, config, onError);
      return new PostgresEditStore(pool, blobs, lock, options);
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lock.release();
    await this.pool.end();
  }

  async health(): Promise<StoreHealth> {
    // a lost connection is reported until the database answers again: ask it, briefly
    if (this.failure?.connection) await this.probe();
    return this.failure ? { writable: false, problems: [`database writes fail: ${this.failure.error.message}`] } : { writable: true, problems: [] };
  }

  /** The schema version and this instance's lock key (for a health endpoint, and the tests). */
  async diagnostics(): Promise<{ schemaVersion: number; instanceKey: number }> {
    return { schemaVersion: await postgresSchemaVersion(this.pool), instanceKey: this.lock.key };
  }

  // -- documents

  async openDocument(host: Host, hostDocumentKey: string, workspaceId: string = DEFAULT_WORKSPACE_ID): Promise<{ documentId: string; created: boolean }> {
    const h = parseOrThrow(Host, host, 'openDocument host');
    const key = parseOrThrow(HostDocumentKey, hostDocumentKey, 'openDocument hostDocumentKey');
    const workspace = parseOrThrow(Id, workspaceId, 'openDocument workspaceId');
    let inserted: pg.QueryResult;
    try {
      inserted = await this.db.query(
        `INSERT INTO documents (id, workspace_id, host, host_key, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (workspace_id, host, host_key) DO NOTHING RETURNING id`,
        [randomUUID(), workspace, h, key, this.timestamp()],
      );
    } catch (error) {
      const { code, constraint } = error as { code?: string; constraint?: string };
      if (code === '23503' && constraint === 'documents_workspace_id_fkey') throw new StoreError('not_found', `openDocument: no workspace ${workspace}`);
      throw error;
    }
    this.wrote();
    if (inserted.rowCount === 1) return { documentId: String(inserted.rows[0].id), created: true };
    // the conflicting row is committed by now (ON CONFLICT waits for its transaction), so a fresh statement sees it
    const row = await this.one(this.db, 'SELECT * FROM documents WHERE workspace_id = $1 AND host = $2 AND host_key = $3', [workspace, h, key]);
    return { documentId: toDocument(row).id, created: false };
  }

  async findDocument(host: Host, hostDocumentKey: string, workspaceId: string = DEFAULT_WORKSPACE_ID): Promise<string | null> {
    const h = parseOrThrow(Host, host, 'findDocument host');
    const key = parseOrThrow(HostDocumentKey, hostDocumentKey, 'findDocument hostDocumentKey');
    const workspace = parseOrThrow(Id, workspaceId, 'findDocument workspaceId');
    const row = await this.one(this.db, 'SELECT * FROM documents WHERE workspace_id = $1 AND host = $2 AND host_key = $3', [workspace, h, key]);
    return row === undefined ? null : toDocument(row).id;
  }

  async getDocument(id: string): Promise<Document | null> {
    const row = await this.one(this.db, 'SELECT * FROM documents WHERE id = $1', [parseOrThrow(Id, id, 'getDocument id')]);
    return row === undefined ? null : toDocument(row);
  }

  // -- nodes

  async addSourceNode(input: SourceNodeInputType): Promise<EditNode> {
    const n = parseOrThrow(SourceNodeInput, input, 'addSourceNode');
    const refs = [{ field: 'imageSha256', sha256: n.imageSha256 }];
    await requireBlobs(this.blobs, 'addSourceNode', refs, null);
    const sizes = await blobSizes(this.blobs, refs);
    const id = await this.transaction(async (tx) => {
      // the document's row lock makes "the existing source node, else a new one" one decision across processes
      const workspaceId = await this.lockDocument(tx, n.documentId, 'addSourceNode documentId');
      if (n.parentId !== null) await this.requireParent(tx, n.parentId, n.documentId, 'addSourceNode parentId');
      await this.accounts.grantIn(tx, grantsOf(sizes, workspaceId, n.authorId));
      const existing = await this.one(
        tx,
        `SELECT id FROM nodes WHERE document_id = $1 AND kind = 'source' AND parent_id IS NOT DISTINCT FROM $2::uuid
           AND result_image_sha256 = $3 ORDER BY seq LIMIT 1`,
        [n.documentId, n.parentId, n.imageSha256],
      );
      if (existing) return String(existing.id);
      const id = randomUUID();
      await tx.query(NODE_INSERT, nodeValues(sourceNodeColumns(id, n.documentId, n.parentId, n.imageSha256, n.options, n.authorId, this.timestamp())));
      return id;
    });
    return (await this.nodes([id]))[0];
  }

  async addEditNodes(jobId: string, nodes: EditNodeInputType[], options: AddEditNodesOptions = {}): Promise<EditNode[]> {
    const id = parseOrThrow(Id, jobId, 'addEditNodes jobId');
    const inputs = parseOrThrow(z.array(EditNodeInput).min(1).max(1024), nodes, 'addEditNodes nodes');
    // Outside the transaction (it waits on blob writes); blobs are never deleted, so what exists now exists at commit.
    const checks = await Promise.allSettled(inputs.map((node, i) => requireBlobs(this.blobs, `addEditNodes nodes.${i}`, blobRefs(node), node.latent)));
    const failed = checks.find((c) => c.status === 'rejected');
    if (failed) throw failed.reason; // the first node in order, whichever check finished first
    const sizes = await blobSizes(this.blobs, inputs.flatMap(blobRefs));
    const ids = inputs.map(() => randomUUID());
    const createdAt = this.timestamp();
    await this.transaction(async (tx) => {
      const job = await this.lockJob(tx, id);
      if (job.state !== 'running') {
        throw new StoreError('illegal_transition', `addEditNodes: job ${id} is ${job.state}; results can only be added to a running job`);
      }
      const document = await this.one(tx, 'SELECT workspace_id FROM documents WHERE id = $1', [job.documentId]);
      for (const [i, node] of inputs.entries()) {
        await this.requireParent(tx, node.parentId, job.documentId, `addEditNodes nodes.${i}.parentId`);
        await tx.query(NODE_INSERT, nodeValues(editNodeColumns(ids[i], job.documentId, id, job.userId, node, createdAt)));
      }
      await this.accounts.grantIn(tx, grantsOf(sizes, String(document?.workspace_id), job.userId));
      if (options.markSucceeded) await this.transition(tx, job, 'succeeded', { resultNodeIds: ids });
    });
    return this.nodes(ids);
  }

  async getNode(id: string): Promise<EditNode | null> {
    const row = await this.one(this.db, 'SELECT * FROM nodes WHERE id = $1', [parseOrThrow(Id, id, 'getNode id')]);
    return row === undefined ? null : toNode(row);
  }

  async history(documentId: string): Promise<History | null> {
    const id = parseOrThrow(Id, documentId, 'history documentId');
    return this.snapshot(async (tx) => {
      if ((await this.one(tx, 'SELECT 1 FROM documents WHERE id = $1', [id])) === undefined) return null;
      const { rows } = await tx.query('SELECT * FROM nodes WHERE document_id = $1 ORDER BY seq', [id]);
      return { documentId: id, nodes: rows.map(toNode) };
    });
  }

  // -- jobs

  async createJob(input: CreateJobInputType): Promise<Job> {
    const { documentId, request, userId, id = randomUUID() } = parseOrThrow(CreateJobInput, input, 'createJob');
    // one statement (this is on the way of every edit): the keys say what is wrong, not extra reads
    try {
      const { rows } = await this.db.query(
        `INSERT INTO jobs (id, document_id, user_id, state, request, created_at, owner_key) VALUES ($1, $2, $3, 'queued', $4, $5, $6) RETURNING *`,
        [id, documentId, userId, JSON.stringify(request), this.timestamp(), this.lock.key],
      );
      this.wrote();
      return toJob(rows[0]);
    } catch (error) {
      const { code, constraint } = error as { code?: string; constraint?: string }; // PostgreSQL's default constraint names
      if (code === '23503' && constraint === 'jobs_document_id_fkey') throw new StoreError('not_found', `createJob documentId: no document ${documentId}`);
      if (code === '23503' && constraint === 'jobs_user_id_fkey') throw new StoreError('not_found', `createJob userId: no user ${userId}`);
      if (code === '23505' && constraint === 'jobs_id_key') throw new StoreError('invalid_input', `createJob: a job ${id} already exists`);
      throw error;
    }
  }

  async updateJobState(id: string, state: JobState, update: JobUpdateType = {}): Promise<Job> {
    const jobId = parseOrThrow(Id, id, 'updateJobState id');
    const to = parseOrThrow(JobState, state, 'updateJobState state');
    const u = parseOrThrow(JobUpdate, update, 'updateJobState update');
    return this.transaction(async (tx) => this.transition(tx, await this.lockJob(tx, jobId), to, u));
  }

  async getJob(id: string): Promise<Job | null> {
    const row = await this.one(this.db, 'SELECT * FROM jobs WHERE id = $1', [parseOrThrow(Id, id, 'getJob id')]);
    return row === undefined ? null : toJob(row);
  }

  async listJobs(filter: JobFilterType = {}): Promise<Job[]> {
    const f = parseOrThrow(JobFilter, filter, 'listJobs filter');
    const { rows } = await this.db.query(
      `SELECT * FROM jobs WHERE ($1::uuid IS NULL OR document_id = $1::uuid) AND ($2::text[] IS NULL OR state = ANY ($2::text[])) ORDER BY seq`,
      [f.documentId ?? null, f.states ?? null],
    );
    return rows.map(toJob);
  }

  /**
   * Fails the unfinished jobs of processes that are gone, and this store's own (see the file comment). Like the
   * embedded store's, this deliberately bypasses JOB_TRANSITIONS: it records what happened, it is not a move.
   */
  async recoverInterruptedJobs(): Promise<Job[]> {
    return this.transaction(async (tx) => {
      const now = this.timestamp();
      const stranded = (await tx.query(STRANDED_JOBS, [ADVISORY_LOCK_NAMESPACE, this.lock.key])).rows.map(toJob);
      const recovered: Job[] = [];
      for (const job of stranded) {
        const error = job.state === 'running' ? INTERRUPTED_RUNNING_ERROR : INTERRUPTED_QUEUED_ERROR;
        const { rows } = await tx.query(`UPDATE jobs SET state = 'failed', error = $2, finished_at = $3, owner_key = $4 WHERE id = $1 RETURNING *`, [
          job.id,
          error,
          now,
          this.lock.key,
        ]);
        recovered.push(toJob(rows[0]));
      }
      return recovered;
    });
  }

  // -- integrity

  async integrityCheck(options: IntegrityOptions = {}): Promise<IntegrityProblem[]> {
    const { orphans, rows } = await this.snapshot(async (tx) => ({
      // PostgreSQL enforces these keys; rows break them only if someone wrote with triggers off (a bad restore)
      orphans: (
        await tx.query<{ message: string }>(`
          SELECT 'nodes row ' || n.id || ' references a missing documents row ' || n.document_id AS message
            FROM nodes n WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = n.document_id)
          UNION ALL
          SELECT 'nodes row ' || n.id || ' references a missing nodes row ' || n.parent_id
            FROM nodes n WHERE n.parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nodes p WHERE p.document_id = n.document_id AND p.id = n.parent_id)
          UNION ALL
          SELECT 'nodes row ' || n.id || ' references a missing jobs row ' || n.job_id
            FROM nodes n WHERE n.job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.document_id = n.document_id AND j.id = n.job_id)
          UNION ALL
          SELECT 'jobs row ' || j.id || ' references a missing documents row ' || j.document_id
            FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = j.document_id)`)
      ).rows,
      rows: {
        documents: (await tx.query('SELECT * FROM documents ORDER BY seq')).rows,
        nodes: (await tx.query('SELECT * FROM nodes ORDER BY seq')).rows,
        jobs: (await tx.query('SELECT * FROM jobs ORDER BY seq')).rows,
      },
    }));
    const problems: IntegrityProblem[] = orphans.map(({ message }) => ({ kind: 'foreign_key', message }));
    problems.push(...(await checkRows(rows, this.blobs, options)));
    return problems;
  }

  // -- internals

  private timestamp(): string {
    return this.now().toISOString();
  }

  private async one(q: Queryable, sql: string, values: unknown[]): Promise<Row | undefined> {
    return (await q.query<Row>(sql, values)).rows[0];
  }

  /**
   * Runs `fn` in a transaction on one connection, READ COMMITTED (or, for a snapshot, REPEATABLE READ READ ONLY);
   * rolls back on any error.
   */
  private async transaction<T>(fn: (tx: Queryable) => Promise<T>, kind: 'write' | 'snapshot' = 'write'): Promise<T> {
    const client = await this.connect();
    const tx: Queryable = { query: (sql, values) => this.statement(client, sql, values) };
    let broken: Error | undefined;
    try {
      await tx.query(kind === 'snapshot' ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN');
    } catch (error) {
      client.release(error as Error); // a connection that cannot begin is not put back in the pool
      throw error;
    }
    try {
      const result = await fn(tx);
      await tx.query('COMMIT');
      if (kind === 'write') this.wrote();
      return result;
    } catch (error) {
      // a failed ROLLBACK means the connection is unusable: drop it from the pool instead of reusing it
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /** A read-only transaction over one snapshot. */
  private snapshot<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.transaction(fn, 'snapshot');
  }

  /** A connection from the pool; not getting one is the database's failure ('unavailable'). */
  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      const code = String((error as { code?: unknown }).code ?? '');
      const why = code.startsWith('28') ? `it refuses the server's login` : code === '3D000' ? 'its database does not exist' : 'it cannot be reached';
      throw this.failed(error, { error: new StoreError('unavailable', `the server cannot use its database right now: ${why}`, { cause: error }), connection: true });
    }
  }

  /** One statement on a connection of its own (as pool.query, with the connection's failures told apart). */
  private async onPool<R extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      return await this.statement<R>(client, sql, values);
    } catch (error) {
      if (error instanceof StoreError) broken = error; // the database's failure: this connection is not put back
      throw error;
    } finally {
      client.release(broken);
    }
  }

  private async statement<R extends pg.QueryResultRow>(client: pg.PoolClient, sql: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      const result = await client.query<R>(sql, values);
      if (this.failure?.connection) this.failure = null; // it answers again
      return result;
    } catch (error) {
      throw this.failed(error, databaseFailure(error));
    }
  }

  /** The error a failed statement throws: the database's failure, remembered for health(), or the error itself. */
  private failed(error: unknown, failure: { error: StoreError; connection: boolean } | null): unknown {
    if (!failure) return error;
    this.failure = failure;
    return failure.error;
  }

  /** A write worked: whatever failed before does not any more. */
  private wrote(): void {
    this.failure = null;
  }

  /** health()'s question to a database whose connection was lost: one SELECT, shared, bounded in time. */
  private probe(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, PROBE_TIMEOUT_MS).unref()));
    this.probing ??= Promise.race([this.db.query('SELECT 1').then(() => {}), timeout])
      .catch(() => {}) // still failing: this.failure says how
      .finally(() => {
        clearTimeout(timer);
        this.probing = null;
      });
    return this.probing;
  }

  /** Nodes by id, in the order of `ids`. */
  private async nodes(ids: string[]): Promise<EditNode[]> {
    const { rows } = await this.db.query('SELECT * FROM nodes WHERE id = ANY ($1::uuid[])', [ids]);
    const byId = new Map(rows.map((row) => [String(row.id), toNode(row)]));
    return ids.map((id) => {
      const node = byId.get(id);
      if (!node) throw new StoreError('not_found', `no node ${id}`);
      return node;
    });
  }

  /** Locks the document's row (not against the inserts that refer to it) and returns its workspace; not_found when there is none. */
  private async lockDocument(tx: Queryable, id: string, where: string): Promise<string> {
    const row = await this.one(tx, 'SELECT workspace_id FROM documents WHERE id = $1 FOR NO KEY UPDATE', [id]);
    if (row === undefined) throw new StoreError('not_found', `${where}: no document ${id}`);
    return String(row.workspace_id);
  }

  private async requireParent(tx: Queryable, parentId: string, documentId: string, where: string): Promise<void> {
    if ((await this.one(tx, 'SELECT 1 FROM nodes WHERE id = $1 AND document_id = $2', [parentId, documentId])) === undefined) {
      throw new StoreError('not_found', `${where}: ${parentId} is not a node of document ${documentId}`);
    }
  }

  /** Reads and locks the job's row for the rest of the transaction; not_found when there is none. */
  private async lockJob(tx: Queryable, id: string): Promise<Job> {
    const row = await this.one(tx, 'SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [id]);
    if (row === undefined) throw new StoreError('not_found', `no job ${id}`);
    return toJob(row);
  }

  /** Runs inside a transaction that holds the job's row lock. */
  private async transition(tx: Queryable, job: Job, to: JobState, update: JobUpdateType): Promise<Job> {
    checkTransition(job, to, update);
    let results: string[] = [];
    if (to === 'succeeded') {
      const own = (await tx.query('SELECT id FROM nodes WHERE job_id = $1 ORDER BY seq', [job.id])).rows.map((row) => String(row.id));
      results = successResults(job, update.resultNodeIds, own);
    }
    const now = this.timestamp();
    const { rows } = await tx.query(
      `UPDATE jobs SET state = $3, error = $4, result_node_ids = $5, started_at = $6, finished_at = $7, owner_key = $8
       WHERE id = $1 AND state = $2 RETURNING *`,
      [job.id, job.state, to, update.error ?? null, JSON.stringify(results), to === 'running' ? now : job.startedAt, TERMINAL_STATES.has(to) ? now : null, this.lock.key],
    );
    // the row lock makes this impossible; the compare-and-set is kept so that correctness never rests on the lock alone
    if (rows.length !== 1) throw new StoreError('illegal_transition', `job ${job.id} changed state concurrently`);
    return toJob(rows[0]);
  }
}

/**
 * This store instance's advisory lock: held by a connection of its own (outside the pool) for as long as the
 * store is open. If that connection breaks, the lock is gone and another process's recovery could fail this
 * one's jobs, so it is taken again on a new connection as soon as the server answers.
 */
class InstanceLock {
  private client: pg.Client | null = null;
  private released = false;
  private retry: NodeJS.Timeout | null = null;

  private constructor(
    readonly key: number,
    private readonly config: pg.ClientConfig,
    private readonly onError: (message: string, error: Error) => void,
  ) {}

  static async take(pool: pg.Pool, config: pg.PoolConfig, onError: (message: string, error: Error) => void): Promise<InstanceLock> {
    const { rows } = await pool.query<{ key: number }>(`SELECT nextval('store_instance_keys')::integer AS key`);
    const lock = new InstanceLock(rows[0].key, { ...config, application_name: 'layerloop instance lock' }, onError);
    await lock.acquire();
    return lock;
  }

  async release(): Promise<void> {
    this.released = true;
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  private async acquire(): Promise<void> {
    const client = new pg.Client(this.config);
    client.on('error', (error) => this.lost(client, error));
    await client.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [ADVISORY_LOCK_NAMESPACE, this.key]);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    if (this.released) await client.end();
    else this.client = client;
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.released || this.client !== client) return;
    this.client = null;
    this.onError(`lost the connection holding this server's instance lock ${this.key}; taking it again`, error);
    const again = () => {
      this.retry = null;
      if (this.released) return;
      this.acquire().catch((retryError: Error) => {
        this.onError(`could not take the instance lock ${this.key} again; retrying in 1 s`, retryError);
        this.retry = setTimeout(again, 1000).unref();
      });
    };
    // unref: retrying must not keep a process alive that has nothing else to do
    this.retry = setTimeout(again, 100).unref();
  }
}
