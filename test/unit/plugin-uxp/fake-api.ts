/**
 * An in-memory layerloop server behind the LayerloopApi interface: content-addressed blobs, documents by host
 * key, stored edits, and jobs that walk through scripted snapshots one poll at a time.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { EditRequestInput, JobSnapshot } from '../../../shared/protocol';
import { ApiError, type CreatedEdit, type HistoryNode, type LayerloopApi, type RawImage } from '../../../plugin-uxp/src/api';
import { jobSnapshot } from '../../support/job-snapshot';

export const PREVIEW = (n: number): string => `data:image/png;base64,PREVIEW${n}`;

export interface FakeJob {
  id: string;
  request: EditRequestInput;
  /** snapshots still to serve; the last one repeats */
  script: JobSnapshot[];
  polls: { previewAfterStep: number | undefined }[];
  cancelled: boolean;
}

/** What the fake does to the source pixels for variation k: R = 255 - R, G = k * 10 (alpha kept). */
export function fakeEdit(src: RawImage, k: number): RawImage {
  const rgba = new Uint8Array(src.rgba);
  for (let i = 0; i < rgba.length; i += 4) {
    rgba[i] = 255 - rgba[i];
    rgba[i + 1] = k * 10;
  }
  return { width: src.width, height: src.height, rgba };
}

export class FakeApi implements LayerloopApi {
  readonly blobs = new Map<string, RawImage>();
  readonly uploads: string[] = [];
  readonly documents = new Map<string, string>();
  readonly nodes: (HistoryNode & { documentId: string })[] = [];
  readonly jobs: FakeJob[] = [];
  /** fail the next createEdit with this error */
  failCreate: ApiError | null = null;
  /** throw on the next n getJob calls */
  getJobFailures = 0;
  /** build each job's snapshots (default: queued 1, queued 0, running with previews, succeeded) */
  script: ((job: FakeJob, result: JobSnapshot['result']) => JobSnapshot[]) | null = null;

  async health(): Promise<void> {}

  async openDocument(hostDocumentKey: string): Promise<string> {
    let id = this.documents.get(hostDocumentKey);
    if (!id) {
      id = randomUUID();
      this.documents.set(hostDocumentKey, id);
    }
    return id;
  }

  async history(documentId: string): Promise<HistoryNode[]> {
    return this.nodes.filter((n) => n.documentId === documentId).map(({ documentId: _d, ...n }) => n);
  }

  async createEdit(request: EditRequestInput): Promise<CreatedEdit> {
    if (this.failCreate) {
      const err = this.failCreate;
      this.failCreate = null;
      throw err;
    }
    let sourceSha: string;
    let parentId: string;
    if (request.parent.kind === 'edit') {
      const parentEditId = request.parent.editId;
      const parent = this.nodes.find((n) => n.id === parentEditId);
      if (!parent) throw new ApiError(`edit ${parentEditId} not found`, 'NOT_FOUND', 404);
      sourceSha = request.parent.pixelsSha256 && request.parent.pixelsSha256 !== parent.resultImageSha256 ? request.parent.pixelsSha256 : parent.resultImageSha256;
      parentId = parent.id;
    } else {
      sourceSha = request.parent.imageSha256;
      const node = this.addNode(request.documentId, null, 'source', null, null, sourceSha);
      parentId = node.id;
    }
    const source = this.blobs.get(sourceSha);
    if (!source) throw new ApiError(`blob ${sourceSha} not found`, 'NOT_FOUND', 404);
    const variations = request.options?.variations ?? 1;
    const editIds: string[] = [];
    const resultSha256s: string[] = [];
    for (let k = 0; k < variations; k++) {
      const sha = this.store(fakeEdit(source, k));
      const node = this.addNode(request.documentId, parentId, 'edit', request.regions[0].instruction, k, sha);
      editIds.push(node.id);
      resultSha256s.push(sha);
    }
    const job: FakeJob = { id: randomUUID(), request, script: [], polls: [], cancelled: false };
    const result = { editIds, resultSha256s };
    job.script = this.script ? this.script(job, result) : defaultScript(job.id, request.documentId, result);
    this.jobs.push(job);
    return { jobId: job.id, position: 1, seed: request.options?.seed ?? 1234 };
  }

  async getJob(jobId: string, previewAfterStep?: number): Promise<JobSnapshot> {
    if (this.getJobFailures > 0) {
      this.getJobFailures--;
      throw new ApiError('Cannot reach the layerloop server (fetch failed)');
    }
    const job = this.job(jobId);
    job.polls.push({ previewAfterStep });
    const snap = job.script.length > 1 ? job.script.shift()! : job.script[0];
    const out = { ...snap };
    if (out.previewStep !== null && previewAfterStep !== undefined && out.previewStep <= previewAfterStep) out.previewDataUrl = null;
    return out;
  }

  async cancelJob(jobId: string): Promise<void> {
    const job = this.job(jobId);
    job.cancelled = true;
    const last = job.script[job.script.length - 1];
    job.script = [{ ...last, state: 'cancelled', result: null, finishedAt: 3 }];
  }

  async uploadRgba(rgba: Uint8Array, width: number, height: number): Promise<string> {
    if (rgba.length !== width * height * 4) throw new ApiError(`raw RGBA ${width}x${height} must be ${width * height * 4} bytes`, 'BAD_REQUEST', 400);
    const sha = this.store({ width, height, rgba: new Uint8Array(rgba) });
    this.uploads.push(sha);
    return sha;
  }

  async downloadRgba(sha256: string): Promise<RawImage> {
    const img = this.blobs.get(sha256);
    if (!img) throw new ApiError(`blob ${sha256} not found`, 'NOT_FOUND', 404);
    return { width: img.width, height: img.height, rgba: new Uint8Array(img.rgba) };
  }

  async downloadPngDataUrl(sha256: string): Promise<string> {
    if (!this.blobs.has(sha256)) throw new ApiError('not found', 'NOT_FOUND', 404);
    return `data:image/png;base64,THUMB${sha256.slice(0, 8)}`;
  }

  store(img: RawImage): string {
    const sha = createHash('sha256').update(`${img.width}x${img.height}:`).update(img.rgba).digest('hex');
    this.blobs.set(sha, img);
    return sha;
  }

  private addNode(documentId: string, parentId: string | null, kind: 'source' | 'edit', instruction: string | null, variation: number | null, sha: string) {
    const node = { id: randomUUID(), documentId, parentId, kind, instruction, seed: kind === 'edit' ? 1234 : null, variation, resultImageSha256: sha, createdAt: new Date(0).toISOString() };
    this.nodes.push(node);
    return node;
  }

  private job(jobId: string): FakeJob {
    const job = this.jobs.find((j) => j.id === jobId);
    if (!job) throw new ApiError(`job ${jobId} not found`, 'NOT_FOUND', 404);
    return job;
  }
}

export function snapshot(jobId: string, documentId: string, patch: Partial<JobSnapshot>): JobSnapshot {
  return jobSnapshot({ jobId, documentId, ...patch });
}

function defaultScript(jobId: string, documentId: string, result: JobSnapshot['result']): JobSnapshot[] {
  const s = (patch: Partial<JobSnapshot>) => snapshot(jobId, documentId, patch);
  return [
    s({ state: 'queued', position: 1 }),
    s({ state: 'queued', position: 0 }),
    s({ state: 'running', startedAt: 1, progress: { step: 5, totalSteps: 20, variation: 0 }, previewStep: 5, previewDataUrl: PREVIEW(5) }),
    s({ state: 'running', startedAt: 1, progress: { step: 8, totalSteps: 20, variation: 0 }, previewStep: 5, previewDataUrl: PREVIEW(5) }),
    s({ state: 'running', startedAt: 1, progress: { step: 10, totalSteps: 20, variation: 0 }, previewStep: 10, previewDataUrl: PREVIEW(10) }),
    s({ state: 'succeeded', startedAt: 1, finishedAt: 2, progress: { step: 20, totalSteps: 20, variation: 0 }, previewStep: 10, previewDataUrl: PREVIEW(10), result }),
  ];
}
