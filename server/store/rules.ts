/**
 * The EditStore rules every backend applies the same way (sqlite.ts, postgres.ts): which blobs a node needs and
 * when they count as stored, which job transitions and updates are legal, and the integrity check over rows that
 * a backend has read in one snapshot. The backends own only their SQL and their transactions.
 */
import { latentByteLength } from './latent';
import { toDocument, toJob, toNode } from './rows';
import {
  type BlobStore,
  type EditNode,
  type IntegrityOptions,
  type IntegrityProblem,
  type Job,
  type JobState,
  type JobUpdate,
  type JsonObject,
  JOB_TRANSITIONS,
  type LatentRef,
  StoreError,
  isLegalTransition,
} from './store';

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['succeeded', 'failed', 'cancelled']);

/** Every blob a node points at, with the field that points at it (for messages). */
export function blobRefs(node: {
  sourceImageSha256: string;
  resultImageSha256: string;
  regions: { maskSha256: string | null }[];
  latent: LatentRef | null;
  /** an edit's options; `references` lists the reference images it read (edits.create's references) */
  options?: JsonObject;
}): { field: string; sha256: string }[] {
  const refs = [
    { field: 'sourceImageSha256', sha256: node.sourceImageSha256 },
    { field: 'resultImageSha256', sha256: node.resultImageSha256 },
  ];
  node.regions.forEach((region, i) => {
    if (region.maskSha256 !== null) refs.push({ field: `regions.${i}.maskSha256`, sha256: region.maskSha256 });
  });
  if (node.latent) refs.push({ field: 'latent.sha256', sha256: node.latent.sha256 });
  const references = node.options?.references;
  if (Array.isArray(references)) {
    references.forEach((sha256, i) => {
      if (typeof sha256 === 'string') refs.push({ field: `options.references.${i}`, sha256 });
    });
  }
  return refs;
}

/**
 * Every referenced blob must be stored already (and durable), and a latent's bytes must match its shape. Runs
 * before the transaction that adds the node: blobs are never deleted, so what exists now still exists at commit.
 */
export async function requireBlobs(blobs: BlobStore, where: string, refs: { field: string; sha256: string }[], latent: LatentRef | null): Promise<void> {
  // a blob put with wait 'readable' (an upload) may still be on its way to storage: a node must never outlive it
  const all = latent ? [...refs, { field: 'latent', sha256: latent.sha256 }] : refs;
  const writes = await Promise.allSettled(all.map((ref) => blobs.whenDurable(ref.sha256)));
  const failed = writes.findIndex((w) => w.status === 'rejected');
  if (failed >= 0) {
    const reason = ((writes[failed] as PromiseRejectedResult).reason as Error).message;
    throw new StoreError('invalid_input', `${where}.${all[failed].field}: blob ${all[failed].sha256} could not be written to the blob store (${reason}); upload it again`);
  }
  // all lookups at once (each is a round trip); the first missing one in field order is reported
  const [present, latentStat] = await Promise.all([Promise.all(refs.map((ref) => blobs.has(ref.sha256))), latent ? blobs.stat(latent.sha256) : null]);
  const missing = refs.find((_, i) => !present[i]);
  if (missing) {
    throw new StoreError('invalid_input', `${where}.${missing.field}: blob ${missing.sha256} is not in the blob store (put blobs before the nodes that reference them)`);
  }
  if (latent) {
    const size = latentStat?.size;
    const expected = latentByteLength(latent.shape);
    if (size !== expected) {
      throw new StoreError('invalid_input', `${where}.latent: blob ${latent.sha256} has ${size} bytes; shape [${latent.shape.join(', ')}] in float16 needs ${expected}`);
    }
  }
}

/**
 * The sizes of blobs that requireBlobs() has just found (for their grants: the per-user storage quota), one entry
 * per distinct blob. Blobs are never deleted, so a size read now holds at commit.
 */
export async function blobSizes(blobs: BlobStore, refs: { sha256: string }[]): Promise<Map<string, number>> {
  const distinct = [...new Set(refs.map((ref) => ref.sha256))];
  const stats = await Promise.all(distinct.map((sha256) => blobs.stat(sha256)));
  return new Map(distinct.map((sha256, i) => [sha256, stats[i]?.size ?? 0]));
}

/** The grants that make these blobs readable in `workspaceId`, brought in by `userId`. */
export function grantsOf(sizes: Map<string, number>, workspaceId: string, userId: string): { workspaceId: string; sha256: string; size: number; userId: string }[] {
  return [...sizes].map(([sha256, size]) => ({ workspaceId, sha256, size, userId }));
}

/** Throws unless `job` may move to `to` with `update` (JOB_TRANSITIONS, and error/resultNodeIds only where they belong). */
export function checkTransition(job: Job, to: JobState, update: JobUpdate): void {
  if (!isLegalTransition(job.state, to)) {
    const allowed = JOB_TRANSITIONS[job.state];
    const options = allowed.length > 0 ? `from ${job.state} only ${allowed.join(' or ')}` : `${job.state} is final`;
    throw new StoreError('illegal_transition', `job ${job.id}: ${job.state} -> ${to} is not allowed (${options})`);
  }
  if (update.error !== undefined && to !== 'failed' && to !== 'cancelled') {
    throw new StoreError('invalid_input', `job ${job.id}: an error is recorded only when a job fails or is cancelled, not when it becomes ${to}`);
  }
  if (to === 'failed' && update.error === undefined) {
    throw new StoreError('invalid_input', `job ${job.id}: a failed job needs an error message`);
  }
  if (update.resultNodeIds !== undefined && to !== 'succeeded') {
    throw new StoreError('invalid_input', `job ${job.id}: resultNodeIds are recorded only when a job succeeds, not when it becomes ${to}`);
  }
}

/** A succeeding job's results: `requested` (default: all of its nodes, `own`), each a node of the job, once. */
export function successResults(job: Job, requested: readonly string[] | undefined, own: readonly string[]): string[] {
  const results = [...(requested ?? own)];
  const ownSet = new Set(own);
  const bad = results.find((nodeId) => !ownSet.has(nodeId));
  if (bad !== undefined) throw new StoreError('invalid_input', `job ${job.id}: resultNodeIds: ${bad} is not a node of this job`);
  if (new Set(results).size !== results.length) throw new StoreError('invalid_input', `job ${job.id}: resultNodeIds has duplicates`);
  return results;
}

/**
 * The backend-neutral part of integrityCheck: every row parses, every node's blobs are stored (with the right
 * size for latents, and the right hash with `verifyBlobHashes`), and every job's results are its own nodes.
 * `rows` must come from one snapshot.
 */
export async function checkRows(
  rows: { documents: unknown[]; nodes: unknown[]; jobs: unknown[] },
  blobs: BlobStore,
  options: IntegrityOptions,
): Promise<IntegrityProblem[]> {
  const problems: IntegrityProblem[] = [];
  const parse = <T>(list: unknown[], to: (row: unknown) => T): T[] =>
    list.flatMap((row) => {
      try {
        return [to(row)];
      } catch (error) {
        problems.push({ kind: 'corrupt_row', message: (error as Error).message });
        return [];
      }
    });
  parse(rows.documents, toDocument);
  const nodes: EditNode[] = parse(rows.nodes, toNode);
  const jobs: Job[] = parse(rows.jobs, toJob);

  const seen = new Map<string, Promise<IntegrityProblem | null>>();
  const checkBlob = (sha256: string, expectedSize: number | null) => {
    const key = `${sha256}:${expectedSize}`;
    let pending = seen.get(key);
    if (!pending) {
      pending = blobProblem(blobs, sha256, expectedSize, options.verifyBlobHashes === true);
      seen.set(key, pending);
    }
    return pending;
  };
  for (const node of nodes) {
    for (const ref of blobRefs(node)) {
      const expectedSize = ref.field === 'latent.sha256' && node.latent ? latentByteLength(node.latent.shape) : null;
      const problem = await checkBlob(ref.sha256, expectedSize);
      if (problem) problems.push({ kind: problem.kind, message: `node ${node.id} ${ref.field}: ${problem.message}` });
    }
  }

  const jobOfNode = new Map(nodes.map((node) => [node.id, node.jobId]));
  for (const job of jobs) {
    for (const nodeId of job.resultNodeIds) {
      if (jobOfNode.get(nodeId) !== job.id) {
        problems.push({ kind: 'job_results', message: `job ${job.id}: result node ${nodeId} is not a node of this job` });
      }
    }
    if (job.resultNodeIds.length > 0 && job.state !== 'succeeded') {
      problems.push({ kind: 'job_results', message: `job ${job.id} is ${job.state} but lists result nodes` });
    }
  }
  return problems;
}

async function blobProblem(blobs: BlobStore, sha256: string, expectedSize: number | null, verify: boolean): Promise<IntegrityProblem | null> {
  const stat = await blobs.stat(sha256);
  if (!stat) return { kind: 'missing_blob', message: `blob ${sha256} is missing from the blob store` };
  if (expectedSize !== null && stat.size !== expectedSize) {
    return { kind: 'latent_size', message: `latent blob ${sha256} has ${stat.size} bytes, its shape needs ${expectedSize}` };
  }
  if (verify) {
    try {
      await blobs.get(sha256);
    } catch (error) {
      return { kind: 'corrupt_blob', message: (error as Error).message };
    }
  }
  return null;
}
