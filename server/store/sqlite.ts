/**
 * SqliteEditStore: the embedded EditStore on one SQLite file (better-sqlite3), next to an FsBlobStore.
 *
 * Durability: WAL with synchronous=FULL, so a committed transaction survives a process kill or power loss.
 * Ordering: callers put blobs first (each durable on its own) and then add the nodes that reference them; the
 * node insert refuses references to blobs that are not there. So after any crash, every node's blobs exist,
 * and a job's nodes appear together or not at all.
 *
 * better-sqlite3 is synchronous; the methods are async only because the EditStore contract must also fit a
 * networked backend (postgres.ts is one). Rows are mapped by rows.ts and the rules both backends share (blob
 * references, job transitions, the integrity check) live in rules.ts.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { type FileIdentity, identityOf, sameFile, stillFailing } from './disk';
import { migrate, schemaVersion } from './migrations';
import { SqliteAccountStore } from './sqlite-accounts';
import { editNodeColumns, sourceNodeColumns, toDocument, toJob, toNode } from './rows';
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
  storageFailure,
  parseOrThrow,
} from './store';

export interface SqliteEditStoreOptions {
  /** Clock for createdAt/startedAt/finishedAt (tests pin it). */
  now?: () => Date;
  /** How long a write waits for another process's write lock before failing (default 5 s). */
  busyTimeoutMs?: number;
  /** Refuse an empty database (no schema yet): set when blobs are already stored beside it. */
  mustHoldData?: boolean;
}

/** A failure of the storage under SQLite (full, read-only, I/O), not of the statement. */
function isStorageError(error: unknown): boolean {
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  return /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|PERM)/.test(code);
}

/** SQLite's verdict that the file is damaged or not a database at all. */
export function isSqliteCorruption(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT_INDEX' || code === 'SQLITE_CORRUPT_SEQUENCE';
}

// ---------------------------------------------------------------------------------------------

export class SqliteEditStore implements EditStore {
  readonly accounts: SqliteAccountStore;
  private readonly db: Database.Database;
  private readonly now: () => Date;
  private readonly sql: ReturnType<typeof prepareStatements>;
  /** the database file this store opened: writes stop when another one (or none) is at its path */
  private readonly identity: FileIdentity;
  /** the last write that failed, until one succeeds (health) */
  private writeFailure: StoreError | null = null;

  constructor(
    readonly file: string,
    private readonly blobs: BlobStore,
    options: SqliteEditStoreOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.db = new Database(file);
    try {
      if (options.mustHoldData && schemaVersion(this.db) === 0) {
        throw new StoreError(
          'corrupt',
          `${file} is empty (or new), but the blob store beside it holds stored images: the database was lost or truncated. ` +
            `Restore it from a backup; to start afresh instead, move the whole data directory away`,
        );
      }
      configure(this.db, file, options.busyTimeoutMs ?? 5000);
      migrate(this.db);
      this.sql = prepareStatements(this.db);
      this.accounts = new SqliteAccountStore(this.db, this.now, (fn) => this.write(fn));
      this.identity = identityOf(fs.statSync(file));
    } catch (error) {
      this.db.close();
      throw error;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  async health(): Promise<StoreHealth> {
    const problems: string[] = [];
    const moved = this.fileProblem();
    if (moved) problems.push(moved.message);
    else if (this.writeFailure && !(await stillFailing(path.dirname(this.file), this.writeFailure))) this.writeFailure = null;
    if (!moved && this.writeFailure) problems.push(`database writes fail: ${this.writeFailure.message}`);
    return { writable: problems.length === 0, problems };
  }

  /**
   * Runs a write: refused when the database file was removed or replaced since it was opened (SQLite would go on
   * writing into the unlinked file, and acknowledge it); a failure becomes StoreError 'full' / 'unavailable' and
   * is reported by health() until a write succeeds.
   */
  private write<T>(fn: () => T): T {
    const moved = this.fileProblem();
    if (moved) throw moved;
    try {
      const result = fn();
      if (this.writeFailure?.code !== 'full') this.writeFailure = null; // a full disk: until there is room (health)
      return result;
    } catch (error) {
      if (error instanceof StoreError || !isStorageError(error)) throw error;
      const failure = storageFailure(error);
      if (failure instanceof StoreError) this.writeFailure = failure;
      throw failure;
    }
  }

  /** The database file is not the one this store opened any more (removed, or another file in its place). */
  private fileProblem(): StoreError | null {
    let stats: fs.Stats;
    try {
      stats = fs.statSync(this.file);
    } catch {
      return new StoreError('unavailable', 'the server cannot store data: its database file was removed while it ran (restart the server)');
    }
    if (!sameFile(this.identity, stats)) {
      return new StoreError('unavailable', 'the server cannot store data: its database file was replaced while it ran (restart the server)');
    }
    return null;
  }

  /** The connection's durability settings and schema version (for a health endpoint, and the tests). */
  diagnostics(): { schemaVersion: number; journalMode: string; synchronous: 'off' | 'normal' | 'full' | 'extra'; foreignKeys: boolean } {
    const sync = this.db.pragma('synchronous', { simple: true }) as number;
    return {
      schemaVersion: this.db.pragma('user_version', { simple: true }) as number,
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: (['off', 'normal', 'full', 'extra'] as const)[sync],
      foreignKeys: this.db.pragma('foreign_keys', { simple: true }) === 1,
    };
  }

  // -- documents

  async openDocument(host: Host, hostDocumentKey: string, workspaceId: string = DEFAULT_WORKSPACE_ID): Promise<{ documentId: string; created: boolean }> {
    const h = parseOrThrow(Host, host, 'openDocument host');
    const key = parseOrThrow(HostDocumentKey, hostDocumentKey, 'openDocument hostDocumentKey');
    const workspace = parseOrThrow(Id, workspaceId, 'openDocument workspaceId');
    const info = this.write(() =>
      this.db
        .transaction(() => {
          if (this.sql.workspace.get(workspace) === undefined) throw new StoreError('not_found', `openDocument: no workspace ${workspace}`);
          return this.sql.insertDocument.run({ id: randomUUID(), workspace, host: h, key, now: this.timestamp() });
        })
        .immediate(),
    );
    const row = this.sql.documentByKey.get({ workspace, host: h, key });
    return { documentId: toDocument(row).id, created: info.changes === 1 };
  }

  async findDocument(host: Host, hostDocumentKey: string, workspaceId: string = DEFAULT_WORKSPACE_ID): Promise<string | null> {
    const h = parseOrThrow(Host, host, 'findDocument host');
    const key = parseOrThrow(HostDocumentKey, hostDocumentKey, 'findDocument hostDocumentKey');
    const workspace = parseOrThrow(Id, workspaceId, 'findDocument workspaceId');
    const row = this.sql.documentByKey.get({ workspace, host: h, key });
    return row === undefined ? null : toDocument(row).id;
  }

  async getDocument(id: string): Promise<Document | null> {
    const row = this.sql.document.get(parseOrThrow(Id, id, 'getDocument id'));
    return row === undefined ? null : toDocument(row);
  }

  // -- nodes

  async addSourceNode(input: SourceNodeInputType): Promise<EditNode> {
    const n = parseOrThrow(SourceNodeInput, input, 'addSourceNode');
    const refs = [{ field: 'imageSha256', sha256: n.imageSha256 }];
    await requireBlobs(this.blobs, 'addSourceNode', refs, null);
    const sizes = await blobSizes(this.blobs, refs);
    const id = this.write(() =>
      this.db
        .transaction((): string => {
          const workspaceId = this.requireDocument(n.documentId, 'addSourceNode documentId');
          if (n.parentId !== null) this.requireParent(n.parentId, n.documentId, 'addSourceNode parentId');
          this.accounts.grantNow(grantsOf(sizes, workspaceId, n.authorId));
          const existing = this.sql.sourceNode.get({ documentId: n.documentId, parentId: n.parentId, imageSha256: n.imageSha256 }) as { id: string } | undefined;
          if (existing) return existing.id;
          const id = randomUUID();
          this.sql.insertNode.run(sourceNodeColumns(id, n.documentId, n.parentId, n.imageSha256, n.options, n.authorId, this.timestamp()));
          return id;
        })
        .immediate(),
    );
    return this.mustGetNode(id);
  }

  async addEditNodes(jobId: string, nodes: EditNodeInputType[], options: AddEditNodesOptions = {}): Promise<EditNode[]> {
    const id = parseOrThrow(Id, jobId, 'addEditNodes jobId');
    const inputs = parseOrThrow(z.array(EditNodeInput).min(1).max(1024), nodes, 'addEditNodes nodes');
    // Outside the transaction (it is async); blobs are never deleted, so what exists now still exists at commit.
    const checks = await Promise.allSettled(inputs.map((node, i) => requireBlobs(this.blobs, `addEditNodes nodes.${i}`, blobRefs(node), node.latent)));
    const failed = checks.find((c) => c.status === 'rejected');
    if (failed) throw failed.reason; // the first node in order, whichever check finished first
    const sizes = await blobSizes(this.blobs, inputs.flatMap(blobRefs));
    const ids = inputs.map(() => randomUUID());
    const createdAt = this.timestamp();
    this.write(() =>
      this.db
        .transaction(() => {
          const job = this.requireJob(id);
          if (job.state !== 'running') {
            throw new StoreError('illegal_transition', `addEditNodes: job ${id} is ${job.state}; results can only be added to a running job`);
          }
          const workspaceId = this.requireDocument(job.documentId, 'addEditNodes');
          inputs.forEach((node, i) => {
            this.requireParent(node.parentId, job.documentId, `addEditNodes nodes.${i}.parentId`);
            this.sql.insertNode.run(editNodeColumns(ids[i], job.documentId, id, job.userId, node, createdAt));
          });
          this.accounts.grantNow(grantsOf(sizes, workspaceId, job.userId));
          if (options.markSucceeded) this.transition(job, 'succeeded', { resultNodeIds: ids });
        })
        .immediate(),
    );
    return ids.map((nodeId) => this.mustGetNode(nodeId));
  }

  async getNode(id: string): Promise<EditNode | null> {
    const row = this.sql.node.get(parseOrThrow(Id, id, 'getNode id'));
    return row === undefined ? null : toNode(row);
  }

  async history(documentId: string): Promise<History | null> {
    const id = parseOrThrow(Id, documentId, 'history documentId');
    // one read transaction, so the document and its nodes are one consistent snapshot
    return this.db.transaction(() => {
      if (this.sql.document.get(id) === undefined) return null;
      return { documentId: id, nodes: this.sql.nodesOfDocument.all(id).map(toNode) };
    })();
  }

  // -- jobs

  async createJob(input: CreateJobInputType): Promise<Job> {
    const { documentId, request, userId, id = randomUUID() } = parseOrThrow(CreateJobInput, input, 'createJob');
    this.write(() =>
      this.db
        .transaction(() => {
          this.requireDocument(documentId, 'createJob documentId');
          if (this.sql.job.get(id) !== undefined) throw new StoreError('invalid_input', `createJob: a job ${id} already exists`);
          if (this.sql.user.get(userId) === undefined) throw new StoreError('not_found', `createJob userId: no user ${userId}`);
          this.sql.insertJob.run({ id, documentId, userId, request: JSON.stringify(request), now: this.timestamp() });
        })
        .immediate(),
    );
    return this.requireJob(id);
  }

  async updateJobState(id: string, state: JobState, update: JobUpdateType = {}): Promise<Job> {
    const jobId = parseOrThrow(Id, id, 'updateJobState id');
    const to = parseOrThrow(JobState, state, 'updateJobState state');
    const u = parseOrThrow(JobUpdate, update, 'updateJobState update');
    this.write(() => this.db.transaction(() => this.transition(this.requireJob(jobId), to, u)).immediate());
    return this.requireJob(jobId);
  }

  async getJob(id: string): Promise<Job | null> {
    const row = this.sql.job.get(parseOrThrow(Id, id, 'getJob id'));
    return row === undefined ? null : toJob(row);
  }

  async listJobs(filter: JobFilterType = {}): Promise<Job[]> {
    const f = parseOrThrow(JobFilter, filter, 'listJobs filter');
    const rows = this.sql.listJobs.all({
      documentId: f.documentId ?? null,
      states: f.states === undefined ? null : JSON.stringify(f.states),
    });
    return rows.map(toJob);
  }

  async recoverInterruptedJobs(): Promise<Job[]> {
    // This deliberately bypasses JOB_TRANSITIONS (queued -> failed is not a move a worker may make): it records
    // what happened to jobs whose process is gone, rather than asking for a transition.
    const ids = this.write(() =>
      this.db
        .transaction(() => {
          const now = this.timestamp();
          const stranded = this.sql.unfinishedJobs.all().map(toJob);
          for (const job of stranded) {
            const error = job.state === 'running' ? INTERRUPTED_RUNNING_ERROR : INTERRUPTED_QUEUED_ERROR;
            this.sql.failInterrupted.run({ id: job.id, from: job.state, error, now });
          }
          return stranded.map((job) => job.id);
        })
        .immediate(),
    );
    return ids.map((jobId) => this.requireJob(jobId));
  }

  // -- integrity

  async integrityCheck(options: IntegrityOptions = {}): Promise<IntegrityProblem[]> {
    const problems: IntegrityProblem[] = [];
    for (const row of this.db.pragma('integrity_check') as { integrity_check: string }[]) {
      if (row.integrity_check !== 'ok') problems.push({ kind: 'sqlite', message: row.integrity_check });
    }
    for (const row of this.db.pragma('foreign_key_check') as { table: string; rowid: number; parent: string }[]) {
      problems.push({ kind: 'foreign_key', message: `${row.table} rowid ${row.rowid} references a missing ${row.parent} row` });
    }

    // Read every row first (one snapshot), then check blobs: the connection must not be mid-query across awaits.
    const rows = this.db.transaction(() => ({
      documents: this.sql.allDocuments.all(),
      nodes: this.sql.allNodes.all(),
      jobs: this.sql.allJobs.all(),
    }))();
    problems.push(...(await checkRows(rows, this.blobs, options)));
    return problems;
  }

  // -- internals

  private timestamp(): string {
    return this.now().toISOString();
  }

  /** Returns the document's workspace. */
  private requireDocument(id: string, where: string): string {
    const row = this.sql.document.get(id) as { workspace_id: string } | undefined;
    if (row === undefined) throw new StoreError('not_found', `${where}: no document ${id}`);
    return row.workspace_id;
  }

  private requireParent(parentId: string, documentId: string, where: string): void {
    if (this.sql.nodeInDocument.get({ id: parentId, documentId }) === undefined) {
      throw new StoreError('not_found', `${where}: ${parentId} is not a node of document ${documentId}`);
    }
  }

  private requireJob(id: string): Job {
    const row = this.sql.job.get(id);
    if (row === undefined) throw new StoreError('not_found', `no job ${id}`);
    return toJob(row);
  }

  private mustGetNode(id: string): EditNode {
    const row = this.sql.node.get(id);
    if (row === undefined) throw new StoreError('not_found', `no node ${id}`);
    return toNode(row);
  }

  /** Runs inside a write transaction. */
  private transition(job: Job, to: JobState, update: JobUpdateType): void {
    checkTransition(job, to, update);
    const own = () => this.sql.nodeIdsOfJob.all(job.id).map((row) => (row as { id: string }).id);
    const results = to === 'succeeded' ? successResults(job, update.resultNodeIds, own()) : [];
    const now = this.timestamp();
    const info = this.sql.updateJob.run({
      id: job.id,
      from: job.state,
      to,
      error: update.error ?? null,
      results: JSON.stringify(results),
      startedAt: to === 'running' ? now : job.startedAt,
      finishedAt: TERMINAL_STATES.has(to) ? now : null,
    });
    // The WHERE clause repeats the state we read; inside BEGIN IMMEDIATE nothing can change it, but a backend
    // without that lock relies on exactly this compare-and-set, so the SQLite one does the same.
    if (info.changes !== 1) throw new StoreError('illegal_transition', `job ${job.id} changed state concurrently`);
  }
}

function configure(db: Database.Database, file: string, busyTimeoutMs: number): void {
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new Error(`${file}: could not switch to WAL journaling (journal_mode is ${String(mode)})`);
  // FULL: a commit is on disk when it returns (NORMAL in WAL mode may lose the last commits on power loss)
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
}

function prepareStatements(db: Database.Database) {
  return {
    insertDocument: db.prepare(
      `INSERT INTO documents (id, workspace_id, host, host_key, created_at) VALUES (@id, @workspace, @host, @key, @now)
       ON CONFLICT (workspace_id, host, host_key) DO NOTHING`,
    ),
    documentByKey: db.prepare('SELECT * FROM documents WHERE workspace_id = @workspace AND host = @host AND host_key = @key'),
    workspace: db.prepare('SELECT 1 FROM workspaces WHERE id = ?'),
    user: db.prepare('SELECT 1 FROM users WHERE id = ?'),
    document: db.prepare('SELECT * FROM documents WHERE id = ?'),
    allDocuments: db.prepare('SELECT * FROM documents ORDER BY rowid'),

    insertNode: db.prepare(
      `INSERT INTO nodes (id, document_id, parent_id, kind, instruction, regions, options, seed, variation,
         source_image_sha256, result_image_sha256, latent, conditioning, job_id, author_id, created_at)
       VALUES (@id, @documentId, @parentId, @kind, @instruction, @regions, @options, @seed, @variation,
         @sourceImageSha256, @resultImageSha256, @latent, @conditioning, @jobId, @authorId, @createdAt)`,
    ),
    node: db.prepare('SELECT * FROM nodes WHERE id = ?'),
    nodeInDocument: db.prepare('SELECT 1 FROM nodes WHERE id = @id AND document_id = @documentId'),
    nodesOfDocument: db.prepare('SELECT * FROM nodes WHERE document_id = ? ORDER BY seq'),
    sourceNode: db.prepare(
      `SELECT id FROM nodes WHERE document_id = @documentId AND kind = 'source' AND parent_id IS @parentId
         AND result_image_sha256 = @imageSha256 ORDER BY seq LIMIT 1`,
    ),
    nodeIdsOfJob: db.prepare('SELECT id FROM nodes WHERE job_id = ? ORDER BY seq'),
    allNodes: db.prepare('SELECT * FROM nodes ORDER BY seq'),

    insertJob: db.prepare(
      `INSERT INTO jobs (id, document_id, user_id, state, request, created_at) VALUES (@id, @documentId, @userId, 'queued', @request, @now)`,
    ),
    job: db.prepare('SELECT * FROM jobs WHERE id = ?'),
    listJobs: db.prepare(
      `SELECT * FROM jobs
       WHERE (@documentId IS NULL OR document_id = @documentId)
         AND (@states IS NULL OR state IN (SELECT value FROM json_each(@states)))
       ORDER BY seq`,
    ),
    allJobs: db.prepare('SELECT * FROM jobs ORDER BY seq'),
    unfinishedJobs: db.prepare(`SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY seq`),
    updateJob: db.prepare(
      `UPDATE jobs SET state = @to, error = @error, result_node_ids = @results, started_at = @startedAt,
         finished_at = @finishedAt
       WHERE id = @id AND state = @from`,
    ),
    failInterrupted: db.prepare(
      `UPDATE jobs SET state = 'failed', error = @error, finished_at = @now WHERE id = @id AND state = @from`,
    ),
  };
}
