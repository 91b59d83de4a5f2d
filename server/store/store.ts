/**
 * The store's contracts (DESIGN.md section 5): a content-addressed BlobStore for image, mask and latent bytes,
 * and an EditStore for documents, their edit-node trees and jobs. The embedded default (FsBlobStore +
 * SqliteEditStore) implements them; a networked backend (object storage + Postgres) is meant to implement the
 * same interfaces and pass the same contract tests (test/unit/store/contract.ts), so everything here is async
 * and nothing here mentions SQLite or the file system.
 *
 * Anything arriving from outside the process goes through the zod schemas below; the types are inferred from
 * them so the schema and the type cannot drift apart.
 */
import { z } from 'zod';
import { JOB_STATES, SHA256_PATTERN, hasNoNul } from '../../shared/protocol';
import type { AccountStore } from './accounts';

/** The default workspace and user (accounts.ts): what the shared-token and token-less modes act as. */
export const DEFAULT_WORKSPACE_ID = '00000000-0000-4000-8000-000000000001';
export const DEFAULT_USER_ID = '00000000-0000-4000-8000-000000000002';

// ---------------------------------------------------------------------------------------------
// errors

/**
 * `code` is what an API layer maps to a status: invalid_input -> 400, not_found -> 404,
 * illegal_transition -> 409, corrupt -> 500 (the data on disk is damaged, not the request), full -> 507 (no
 * space left: nothing was stored), unavailable -> 503 (the storage cannot be used: read-only, permissions, I/O
 * errors, the data directory removed or replaced, a database or bucket that cannot be reached or refuses). The
 * messages of full and unavailable are written for users and name no server paths, URLs or keys; `cause` keeps
 * the detail for the log. Each backend maps its own failures: storageFailure() below for files and SQLite,
 * databaseFailure() in postgres.ts, bucketFailure() in s3.ts.
 */
export type StoreErrorCode = 'invalid_input' | 'not_found' | 'illegal_transition' | 'corrupt' | 'full' | 'unavailable';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** Whether the store can take writes now, and if not, why (for `health`; written for operators, no paths). */
export interface StoreHealth {
  writable: boolean;
  /** empty when all is well */
  problems: string[];
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}

/** Parse with zod; a failure throws a StoreError reading `WHERE: field.path: message` for the first issues. */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, where: string, code: StoreErrorCode = 'invalid_input'): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const shown = issues.slice(0, 3).map((issue) => `${where}: ${formatPath(issue.path)}: ${issue.message}`);
  const more = issues.length > shown.length ? ` (and ${issues.length - shown.length} more)` : '';
  throw new StoreError(code, shown.join('; ') + more);
}

// ---------------------------------------------------------------------------------------------
// blobs

/** The protocol's blob id pattern; strict on purpose: the hash becomes a file path or an object key. */
export { SHA256_PATTERN };
export const Sha256 = z.string().regex(SHA256_PATTERN, 'expected a sha256: 64 lowercase hex characters');

/**
 * Throws unless `value` is a well-formed sha256. Every blob entry point calls this before touching storage, so
 * '../../etc/passwd', 'ABC…' (uppercase), or a hash with a trailing newline can never name a path.
 */
export function assertSha256(value: unknown, what = 'blob hash'): asserts value is string {
  if (typeof value === 'string' && SHA256_PATTERN.test(value)) return;
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : typeof value;
  throw new StoreError('invalid_input', `invalid ${what} ${shown}: expected a sha256 of 64 lowercase hex characters`);
}

export interface BlobPutResult {
  sha256: string;
  size: number;
  /** false when a blob with these bytes was already stored (nothing was rewritten) */
  created: boolean;
}

export interface BlobStat {
  sha256: string;
  size: number;
}

export interface BlobPutOptions {
  /**
   * When put resolves. 'durable' (the default): the blob survives a crash. 'readable': as soon as get/has/stat
   * see it, while it is made durable in the background; whenDurable() waits for that. Uploads use 'readable':
   * nothing refers to an upload until an edit node does, and the edit store waits for durability before it
   * commits such a node, so a crash can lose an unreferenced upload (the client uploads it again) but never
   * leave a node pointing at a missing blob. A store answers a 'readable' put early only when the write can be
   * expected to succeed (no write has failed since the last one that worked, and there is room for it); otherwise
   * it waits for durability like 'durable' does, so a failure is reported to the caller instead of acknowledged.
   */
  wait?: 'durable' | 'readable';
}

export interface BlobStore {
  /**
   * Stores bytes under their sha256. A crash before the blob is durable leaves nothing visible. A stored blob
   * whose bytes no longer match is rewritten (`created: true`). Throws StoreError('full' | 'unavailable') when
   * the bytes cannot be stored.
   * Blobs are bytes only: what they are (a PNG, a float16 latent) is told by their references and their magic.
   */
  put(bytes: Uint8Array, options?: BlobPutOptions): Promise<BlobPutResult>;
  /**
   * null when absent. The bytes are checked against their sha256 on every read: damaged bytes are never
   * returned, StoreError('corrupt') is thrown instead (a put of the right bytes repairs the blob).
   */
  get(sha256: string): Promise<Uint8Array | null>;
  has(sha256: string): Promise<boolean>;
  stat(sha256: string): Promise<BlobStat | null>;
  /**
   * Resolves once the blob is durable: at once unless a put with wait 'readable' is still writing it; rejects
   * with that write's error (the blob is then absent). Call it before committing anything that refers to a blob.
   */
  whenDurable(sha256: string): Promise<void>;
  /** Waits for every write in flight (graceful shutdown). */
  flush(): Promise<void>;
  /** Whether writes work now (a failed write is reported until a later one succeeds). */
  health(): Promise<StoreHealth>;
}

// ---------------------------------------------------------------------------------------------
// documents

export const Host = z.enum(['figma', 'photoshop', 'web', 'cli']);
export type Host = z.infer<typeof Host>;

/** Text columns hold no U+0000 (PostgreSQL cannot), in every backend alike. */
const StoredText = z.string().refine(hasNoNul, { error: 'must not contain NUL characters (U+0000)' });

/** Opaque to the server (a Figma file key + node id, a Photoshop document id…); bounded so it stays an index key. */
export const HostDocumentKey = StoredText.min(1).max(1024);

export const Id = z.uuid();

export interface Document {
  id: string;
  /** the workspace whose members see and continue it (accounts.ts) */
  workspaceId: string;
  host: Host;
  hostDocumentKey: string;
  createdAt: string;
}

// ---------------------------------------------------------------------------------------------
// nodes

/** A plain JSON object (no undefined, NaN, functions…): what options and requests must be to survive storage. */
export const JsonObject = z.record(z.string(), z.json());
export type JsonObject = z.infer<typeof JsonObject>;

const PixelInt = z.number().int().min(0).max(1 << 20);

/** Where in the source image the model worked, and at what size (the engine's Geometry). */
export const LatentGeometry = z.strictObject({
  x: PixelInt,
  y: PixelInt,
  width: PixelInt.min(1),
  height: PixelInt.min(1),
  workWidth: PixelInt.min(1),
  workHeight: PixelInt.min(1),
});

/**
 * A stored latent: float16 little-endian bytes in the blob store (see latent.ts), laid out by `shape`
 * (e.g. [4, h, w] for SD 1.x), scaled by `scalingFactor` (the loop's space, z0 = s * E(x)).
 */
export const LatentRef = z.strictObject({
  sha256: Sha256,
  dtype: z.literal('float16'),
  shape: z.array(z.number().int().min(1)).min(1).max(8),
  geometry: LatentGeometry,
  scalingFactor: z.number().positive(),
});
export type LatentRef = z.infer<typeof LatentRef>;

/** One (mask, instruction) pair of an edit; a null mask means everywhere; an empty instruction keeps that region as it is. */
export const RegionRef = z.strictObject({
  instruction: StoredText.max(4000),
  maskSha256: Sha256.nullable(),
  /** the words the mask was derived from (masks from words); absent for a drawn mask */
  maskText: StoredText.max(4000).optional(),
});
export type RegionRef = z.infer<typeof RegionRef>;

export const NodeKind = z.enum(['source', 'edit']);
export type NodeKind = z.infer<typeof NodeKind>;

export const Conditioning = z.enum(['latent', 'pixels']);
export type Conditioning = z.infer<typeof Conditioning>;

export const Seed = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export interface EditNode {
  id: string;
  documentId: string;
  /** null only for a root (a source node); the client builds the tree from this */
  parentId: string | null;
  kind: NodeKind;
  /** null for source nodes */
  instruction: string | null;
  /** empty for source nodes */
  regions: RegionRef[];
  options: JsonObject;
  seed: number | null;
  /** index among the variations of one job */
  variation: number | null;
  sourceImageSha256: string;
  resultImageSha256: string;
  latent: LatentRef | null;
  conditioning: Conditioning | null;
  jobId: string | null;
  /** who added it: the job's user for edits, the requesting user for source pixels */
  authorId: string;
  createdAt: string;
}

/** A new root (or re-synced) image: its source and result are the same pixels. */
export const SourceNodeInput = z.strictObject({
  documentId: Id,
  parentId: Id.nullable().default(null),
  imageSha256: Sha256,
  options: JsonObject.default({}),
  authorId: Id.default(DEFAULT_USER_ID),
});
export type SourceNodeInput = z.input<typeof SourceNodeInput>;

/** One variation of a job's result. An edit always continues from an earlier node, so parentId is required. */
export const EditNodeInput = z.strictObject({
  parentId: Id,
  instruction: StoredText.min(1).max(4000),
  regions: z.array(RegionRef).min(1).max(64),
  options: JsonObject,
  seed: Seed.nullable(),
  variation: z.number().int().min(0).max(1024).nullable(),
  sourceImageSha256: Sha256,
  resultImageSha256: Sha256,
  latent: LatentRef.nullable(),
  conditioning: Conditioning.nullable(),
});
export type EditNodeInput = z.input<typeof EditNodeInput>;

export interface History {
  documentId: string;
  /** in creation order, so a parent always comes before its children */
  nodes: EditNode[];
}

// ---------------------------------------------------------------------------------------------
// jobs

export const JobState = z.enum(JOB_STATES);
export type JobState = z.infer<typeof JobState>;

/** The only legal moves; everything else throws StoreError('illegal_transition'). */
export const JOB_TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = Object.freeze({
  queued: ['running', 'cancelled', 'failed'], // failed: the server stopped (shutdown, crash recovery) before it started
  running: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
});

export function isLegalTransition(from: JobState, to: JobState): boolean {
  return JOB_TRANSITIONS[from].includes(to);
}

/** The error recoverInterruptedJobs() records on a job that was running when its process died. */
export const INTERRUPTED_RUNNING_ERROR = 'interrupted: the server stopped while this job was running';
/** ...and on one that was still waiting in the queue (it never started, so it says so). */
export const INTERRUPTED_QUEUED_ERROR = 'interrupted: the server stopped before this job started';

export interface Job {
  id: string;
  documentId: string;
  /** who asked for it */
  userId: string;
  state: JobState;
  /** the job's complete input (the request schema lives in shared/) */
  request: JsonObject;
  error: string | null;
  resultNodeIds: string[];
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export const CreateJobInput = z.strictObject({
  documentId: Id,
  request: JsonObject,
  /** optional: a caller that names jobs itself (the in-memory queue does) passes its id; default a new uuid */
  id: Id.optional(),
  userId: Id.default(DEFAULT_USER_ID),
});
export type CreateJobInput = z.input<typeof CreateJobInput>;

export const JobUpdate = z.strictObject({
  /** any U+0000 is kept as U+FFFD (an error message quotes what it was given; it must not fail to be recorded) */
  error: z
    .string()
    .min(1)
    .max(8000)
    .transform((text) => text.replaceAll('\u0000', '\uFFFD'))
    .optional(),
  resultNodeIds: z.array(Id).max(1024).optional(),
});
export type JobUpdate = z.input<typeof JobUpdate>;

export const JobFilter = z.strictObject({
  documentId: Id.optional(),
  states: z.array(JobState).optional(),
});
export type JobFilter = z.input<typeof JobFilter>;

export interface AddEditNodesOptions {
  /**
   * Also move the job to 'succeeded' with these nodes as its results, in the same transaction: one commit
   * point, so a crash leaves either a running job without results or a succeeded job with all of them.
   */
  markSucceeded?: boolean;
}

// ---------------------------------------------------------------------------------------------
// integrity

export type IntegrityProblemKind =
  | 'sqlite'
  | 'foreign_key'
  | 'corrupt_row'
  | 'missing_blob'
  | 'corrupt_blob'
  | 'latent_size'
  | 'job_results';

export interface IntegrityProblem {
  kind: IntegrityProblemKind;
  message: string;
}

export interface IntegrityOptions {
  /** Also rehash every referenced blob (reads everything: slow on a big store). */
  verifyBlobHashes?: boolean;
}

// ---------------------------------------------------------------------------------------------
// the edit store

export interface EditStore {
  /** users, workspaces, tokens and blob grants, in the same database */
  readonly accounts: AccountStore;
  /**
   * Same (workspace, host, key) -> same id, also across restarts. Another workspace opening the same key gets a
   * document of its own (and learns nothing of the first).
   */
  openDocument(host: Host, hostDocumentKey: string, workspaceId?: string): Promise<{ documentId: string; created: boolean }>;
  /** The id openDocument would answer for (workspace, host, key), without making one: null when there is none. */
  findDocument(host: Host, hostDocumentKey: string, workspaceId?: string): Promise<string | null>;
  getDocument(id: string): Promise<Document | null>;

  /**
   * The document's source node for these pixels under `parentId` (null: a root): the existing one when there is
   * one (its options are kept), else a new one. Referenced blobs must already be in the blob store (blobs first,
   * then metadata: see the crash test). The image is granted to the document's workspace.
   */
  addSourceNode(input: SourceNodeInput): Promise<EditNode>;
  /**
   * All variations of one job in one transaction: either every node is added or none is. The job must be
   * running; the nodes belong to the job's document, and each parent must be a node of that document. The nodes'
   * author is the job's user; every blob they reference is granted to the document's workspace.
   */
  addEditNodes(jobId: string, nodes: EditNodeInput[], options?: AddEditNodesOptions): Promise<EditNode[]>;
  getNode(id: string): Promise<EditNode | null>;
  /** null for an unknown document */
  history(documentId: string): Promise<History | null>;

  createJob(input: CreateJobInput): Promise<Job>;
  /**
   * Legal moves only (JOB_TRANSITIONS). 'failed' needs an error; error is allowed with failed/cancelled only;
   * resultNodeIds with succeeded only, and must be nodes of this job (default: all of its nodes).
   */
  updateJobState(id: string, state: JobState, update?: JobUpdate): Promise<Job>;
  getJob(id: string): Promise<Job | null>;
  /** in creation order */
  listJobs(filter?: JobFilter): Promise<Job[]>;
  /**
   * Marks every queued or running job as failed (INTERRUPTED_*_ERROR) and returns them as updated. Call it at
   * startup. The embedded store cannot tell a dead worker from a live one, so only one process may work on it; a
   * store that several processes share (PostgreSQL) fails only the jobs of this store and of processes that are gone.
   */
  recoverInterruptedJobs(): Promise<Job[]>;
  /** Empty when all is well. */
  integrityCheck(options?: IntegrityOptions): Promise<IntegrityProblem[]>;
  /** Whether writes work now (a failed write is reported until a later one succeeds). */
  health(): Promise<StoreHealth>;
}

/** What openStore() returns: both halves plus one way to let go of them. */
export interface Store {
  blobs: BlobStore;
  edits: EditStore;
  /** Both halves' health together. */
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

/** One health from several parts. */
export function combineHealth(parts: StoreHealth[]): StoreHealth {
  return { writable: parts.every((p) => p.writable), problems: parts.flatMap((p) => p.problems) };
}

/**
 * A failed write's error as the StoreError a user may read: the disk is full, or the storage cannot be written
 * (errno codes from the file system, SQLITE_* codes from SQLite). The message names no path; `cause` keeps it.
 */
export function storageFailure(error: unknown): Error {
  if (error instanceof StoreError) return error;
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  if (!/^(E[A-Z]+|SQLITE_\w+)$/.test(code)) return error instanceof Error ? error : new Error(String(error)); // not the storage's
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') {
    return new StoreError('full', `the server's disk is full`, { cause: error });
  }
  const why =
    code === 'EROFS' || code.startsWith('SQLITE_READONLY')
      ? 'its storage is read-only'
      : code === 'EACCES' || code === 'EPERM' || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH'
        ? 'it may not write its data directory'
        : code === 'EIO' || code.startsWith('SQLITE_IOERR')
          ? 'its disk reports I/O errors'
          : `its storage failed (${code || 'unknown error'})`;
  return new StoreError('unavailable', `the server cannot store data right now: ${why}`, { cause: error });
}
