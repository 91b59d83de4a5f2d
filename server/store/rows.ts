/**
 * Rows as the SQL edit stores (sqlite.ts, postgres.ts) write and read them, and their mapping to the store's
 * types. Both backends hand rows over in the same shape: JSON columns as JSON text, timestamps as ISO-8601 text,
 * integers as numbers (postgres.ts sets its type parsers so). Every row read back is parsed with zod, so a
 * damaged row is a clear StoreError('corrupt') naming the table, the row and the field.
 */
import { z } from 'zod';
import {
  Conditioning,
  type Document,
  type EditNode,
  EditNodeInput,
  Host,
  Id,
  type Job,
  JobState,
  JsonObject,
  LatentRef,
  NodeKind,
  RegionRef,
  Seed,
  Sha256,
  parseOrThrow,
} from './store';
import { Role, type TokenRecord, type User, type Workspace, type WorkspaceSummary } from './accounts';

/** A TEXT column holding JSON, parsed and then validated by `schema`. */
function jsonColumn<T>(schema: z.ZodType<T>) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

const Timestamp = z.iso.datetime();

const DocumentRow = z.object({ id: Id, workspace_id: Id, host: Host, host_key: z.string(), created_at: Timestamp });

const NodeRow = z.object({
  id: Id,
  document_id: Id,
  parent_id: Id.nullable(),
  kind: NodeKind,
  instruction: z.string().nullable(),
  regions: jsonColumn(z.array(RegionRef)),
  options: jsonColumn(JsonObject),
  seed: Seed.nullable(),
  variation: z.number().int().min(0).nullable(),
  source_image_sha256: Sha256,
  result_image_sha256: Sha256,
  latent: jsonColumn(LatentRef).nullable(),
  conditioning: Conditioning.nullable(),
  job_id: Id.nullable(),
  author_id: Id,
  created_at: Timestamp,
});

const JobRow = z.object({
  id: Id,
  document_id: Id,
  user_id: Id,
  state: JobState,
  request: jsonColumn(JsonObject),
  error: z.string().nullable(),
  result_node_ids: jsonColumn(z.array(Id)),
  created_at: Timestamp,
  started_at: Timestamp.nullable(),
  finished_at: Timestamp.nullable(),
});

function rowLabel(table: string, row: unknown): string {
  const id = (row as { id?: unknown } | undefined)?.id;
  return `${table} row ${typeof id === 'string' ? id : '(no id)'}`;
}

export function toDocument(row: unknown): Document {
  const r = parseOrThrow(DocumentRow, row, rowLabel('documents', row), 'corrupt');
  return { id: r.id, workspaceId: r.workspace_id, host: r.host, hostDocumentKey: r.host_key, createdAt: r.created_at };
}

export function toNode(row: unknown): EditNode {
  const r = parseOrThrow(NodeRow, row, rowLabel('nodes', row), 'corrupt');
  return {
    id: r.id,
    documentId: r.document_id,
    parentId: r.parent_id,
    kind: r.kind,
    instruction: r.instruction,
    regions: r.regions,
    options: r.options,
    seed: r.seed,
    variation: r.variation,
    sourceImageSha256: r.source_image_sha256,
    resultImageSha256: r.result_image_sha256,
    latent: r.latent,
    conditioning: r.conditioning,
    jobId: r.job_id,
    authorId: r.author_id,
    createdAt: r.created_at,
  };
}

export function toJob(row: unknown): Job {
  const r = parseOrThrow(JobRow, row, rowLabel('jobs', row), 'corrupt');
  return {
    id: r.id,
    documentId: r.document_id,
    userId: r.user_id,
    state: r.state,
    request: r.request,
    error: r.error,
    resultNodeIds: r.result_node_ids,
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/** A node row's values as both backends insert them (JSON columns as text). */
export interface NodeColumns {
  id: string;
  documentId: string;
  parentId: string | null;
  kind: 'source' | 'edit';
  instruction: string | null;
  regions: string;
  options: string;
  seed: number | null;
  variation: number | null;
  sourceImageSha256: string;
  resultImageSha256: string;
  latent: string | null;
  conditioning: Conditioning | null;
  jobId: string | null;
  authorId: string;
  createdAt: string;
}

/** The row of a new source node showing `imageSha256`. */
export function sourceNodeColumns(
  id: string,
  documentId: string,
  parentId: string | null,
  imageSha256: string,
  options: JsonObject,
  authorId: string,
  createdAt: string,
): NodeColumns {
  return {
    id,
    documentId,
    parentId,
    kind: 'source',
    instruction: null,
    regions: '[]',
    options: JSON.stringify(options),
    seed: null,
    variation: null,
    sourceImageSha256: imageSha256,
    resultImageSha256: imageSha256,
    latent: null,
    conditioning: null,
    jobId: null,
    authorId,
    createdAt,
  };
}

/** The row of one of a job's result nodes (`node` already parsed by EditNodeInput). */
export function editNodeColumns(id: string, documentId: string, jobId: string, authorId: string, node: z.output<typeof EditNodeInput>, createdAt: string): NodeColumns {
  return {
    id,
    documentId,
    parentId: node.parentId,
    kind: 'edit',
    instruction: node.instruction,
    regions: JSON.stringify(node.regions),
    options: JSON.stringify(node.options),
    seed: node.seed,
    variation: node.variation,
    sourceImageSha256: node.sourceImageSha256,
    resultImageSha256: node.resultImageSha256,
    latent: node.latent === null ? null : JSON.stringify(node.latent),
    conditioning: node.conditioning,
    jobId,
    authorId,
    createdAt,
  };
}

// ---------------------------------------------------------------------------------------------
// accounts (accounts.ts)

/** SQLite stores booleans as 0/1, PostgreSQL as booleans. */
const Flag = z.union([z.boolean(), z.literal(0).transform(() => false), z.literal(1).transform(() => true)]);
const Count = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);

const WorkspaceRow = z.object({ id: Id, name: z.string(), created_at: Timestamp });
const UserRow = z.object({ id: Id, name: z.string(), role: Role, disabled: Flag, default_workspace_id: Id, created_at: Timestamp });
const TokenRow = z.object({ id: Id, user_id: Id, name: z.string(), created_at: Timestamp, revoked_at: Timestamp.nullable() });

export function toWorkspace(row: unknown): Workspace {
  const r = parseOrThrow(WorkspaceRow, row, rowLabel('workspaces', row), 'corrupt');
  return { id: r.id, name: r.name, createdAt: r.created_at };
}

export function toWorkspaceSummary(row: unknown): WorkspaceSummary {
  const counts = parseOrThrow(
    z.object({ members: Count, documents: Count, jobs: Count, blobs: Count, blob_bytes: Count }),
    row,
    rowLabel('workspaces', row),
    'corrupt',
  );
  return { ...toWorkspace(row), members: counts.members, documents: counts.documents, jobs: counts.jobs, blobs: counts.blobs, blobBytes: counts.blob_bytes };
}

export function toUser(row: unknown): User {
  const r = parseOrThrow(UserRow, row, rowLabel('users', row), 'corrupt');
  return { id: r.id, name: r.name, role: r.role, disabled: r.disabled, defaultWorkspaceId: r.default_workspace_id, createdAt: r.created_at };
}

export function toToken(row: unknown): TokenRecord {
  const r = parseOrThrow(TokenRow, row, rowLabel('tokens', row), 'corrupt');
  return { id: r.id, userId: r.user_id, name: r.name, createdAt: r.created_at, revokedAt: r.revoked_at };
}
