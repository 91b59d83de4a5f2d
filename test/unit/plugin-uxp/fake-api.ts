/**
 * An in-memory layerloop server behind the shared client's interface (LayerloopClient): content-addressed blobs,
 * documents by host key, stored edits, and jobs that walk through scripted snapshots one poll at a time;
 * follow() turns them into events with the client's own snapshotToEvents, as its polling does.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  ClientError,
  snapshotToEvents,
  type BlobInfo,
  type CancelResult,
  type HistoryEntry,
  type ImageBody,
  type LayerloopClient,
  type RawImage,
  type ServerHealth,
  type SignedIn,
} from '../../../shared/client';
import { NO_HISTORY_MESSAGE, isTerminalJobEvent, type CreateEditResult, type EditRequestInput, type Host, type JobEvent, type JobSnapshot, type MaskPreviewInput, type MaskPreviewResult } from '../../../shared/protocol';
import { encodePngStored } from '../../../plugin-uxp/src/thumbnail';
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

export class FakeApi implements LayerloopClient {
  readonly serverUrl = 'http://fake:7860';
  readonly blobs = new Map<string, RawImage>();
  readonly uploads: string[] = [];
  readonly documents = new Map<string, string>();
  readonly nodes: (HistoryEntry & { documentId: string })[] = [];
  /** the hosts documents were opened for */
  readonly hosts: Host[] = [];
  readonly jobs: FakeJob[] = [];
  /** fail the next createEdit with this error */
  failCreate: ClientError | null = null;
  /** throw on the next n getJob calls */
  getJobFailures = 0;
  /** build each job's snapshots (default: queued 1, queued 0, running with previews, succeeded) */
  script: ((job: FakeJob, result: JobSnapshot['result']) => JobSnapshot[]) | null = null;

  /** the model health reports (a klein server reads reference images) */
  model: ServerHealth['model'] = { name: 'fake', provider: 'cpu' };
  /** the author name history gives new nodes (null: a server that names none) */
  authorName: string | null = null;

  async health(): Promise<ServerHealth> {
    return { status: 'ok', version: '0', model: this.model, queue: { queued: 0, running: 0 }, store: { writable: true, problems: [] }, authRequired: false };
  }

  /** who `me` says the token is; null: a server from before accounts */
  signedIn: SignedIn | null = null;

  async me(): Promise<SignedIn | null> {
    return this.signedIn;
  }

  /** documents.open's inputs beyond host and key, as sent */
  readonly openOptions: { workspaceId?: string; create?: boolean }[] = [];

  /** Documents by key; signed in, by `workspace|key` (each workspace its own), as the server keeps them. */
  async openDocument(host: Host, hostDocumentKey: string, options: { workspaceId?: string; create?: boolean } = {}): Promise<string> {
    this.hosts.push(host);
    this.openOptions.push(options);
    const key = this.signedIn ? `${options.workspaceId ?? this.signedIn.defaultWorkspaceId}|${hostDocumentKey}` : hostDocumentKey;
    let id = this.documents.get(key);
    if (!id && options.create === false) throw new ClientError('not-found', NO_HISTORY_MESSAGE, 404, 'NOT_FOUND');
    if (!id) {
      id = randomUUID();
      this.documents.set(key, id);
    }
    return id;
  }

  async history(documentId: string): Promise<HistoryEntry[]> {
    return this.nodes.filter((n) => n.documentId === documentId).map(({ documentId: _d, ...n }) => n);
  }

  async createEdit(request: EditRequestInput): Promise<CreateEditResult> {
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
      if (!parent) throw new ClientError('not-found', `edit ${parentEditId} not found`, 404, 'NOT_FOUND');
      sourceSha = request.parent.pixelsSha256 && request.parent.pixelsSha256 !== parent.resultImageSha256 ? request.parent.pixelsSha256 : parent.resultImageSha256;
      parentId = parent.id;
    } else {
      sourceSha = request.parent.imageSha256;
      const node = this.addNode(request.documentId, null, 'source', null, null, sourceSha);
      parentId = node.id;
    }
    const source = this.blobs.get(sourceSha);
    if (!source) throw new ClientError('not-found', `blob ${sourceSha} not found`, 404, 'NOT_FOUND');
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
    return { jobId: job.id, documentId: request.documentId, position: 1, seed: request.options?.seed ?? 1234 };
  }

  async getJob(jobId: string, previewAfterStep?: number): Promise<JobSnapshot> {
    if (this.getJobFailures > 0) {
      this.getJobFailures--;
      throw new ClientError('network', 'Cannot reach the layerloop server (fetch failed)');
    }
    const job = this.job(jobId);
    job.polls.push({ previewAfterStep });
    const snap = job.script.length > 1 ? job.script.shift()! : job.script[0];
    const out = { ...snap };
    if (out.previewStep !== null && previewAfterStep !== undefined && out.previewStep <= previewAfterStep) out.previewDataUrl = null;
    return out;
  }

  async cancelJob(jobId: string): Promise<CancelResult> {
    const job = this.job(jobId);
    job.cancelled = true;
    const last = job.script[job.script.length - 1];
    job.script = [{ ...last, state: 'cancelled', result: null, finishedAt: 3 }];
    return { cancelled: true, state: last.state };
  }

  async *follow(jobId: string): AsyncGenerator<JobEvent> {
    let prev: JobSnapshot | null = null;
    for (;;) {
      const snap = await this.getJob(jobId, prev?.previewStep ?? undefined);
      for (const event of snapshotToEvents(prev, snap)) {
        yield event;
        if (isTerminalJobEvent(event)) return;
      }
      const shownStep: number | null = prev === null ? null : prev.previewStep;
      prev = { ...snap, previewStep: snap.previewStep ?? shownStep };
      await new Promise((r) => setImmediate(r));
    }
  }

  async putImage(rgba: Uint8Array, body: ImageBody): Promise<BlobInfo> {
    if (!('rgba' in body)) throw new Error('the Photoshop panel uploads raw RGBA');
    const { width, height } = body.rgba;
    if (rgba.length !== width * height * 4) throw new ClientError('bad-request', `raw RGBA ${width}x${height} must be ${width * height * 4} bytes`, 400, 'BAD_REQUEST');
    const sha = this.store({ width, height, rgba: new Uint8Array(rgba) });
    this.uploads.push(sha);
    return { sha256: sha, width, height };
  }

  async getRgba(sha256: string): Promise<RawImage> {
    const img = this.blobs.get(sha256);
    if (!img) throw new ClientError('not-found', `blob ${sha256} not found`, 404, 'NOT_FOUND');
    return { width: img.width, height: img.height, rgba: new Uint8Array(img.rgba) };
  }

  /** PNG blobs (mask previews): the panel shows them in an <img>; results it reads as raw RGBA */
  readonly pngs = new Map<string, Uint8Array>();
  readonly previews: MaskPreviewInput[] = [];
  /** fail the next previewMask with this error */
  failPreview: ClientError | null = null;

  async getBlob(sha256: string): Promise<Uint8Array> {
    const png = this.pngs.get(sha256);
    if (!png) throw new Error('the Photoshop panel cannot decode PNGs: it reads raw RGBA (only mask previews are shown as PNG)');
    return png;
  }

  /** masks.preview: the left half of the layer, as a grayscale PNG */
  async previewMask(input: MaskPreviewInput): Promise<MaskPreviewResult> {
    this.previews.push(input);
    if (this.failPreview) {
      const err = this.failPreview;
      this.failPreview = null;
      throw err;
    }
    const source = this.blobs.get(input.parent.kind === 'source' ? input.parent.imageSha256 : input.parent.pixelsSha256!)!;
    const { width, height } = source;
    const rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      rgba.fill(i % width < width / 2 ? 255 : 0, i * 4, i * 4 + 3);
      rgba[i * 4 + 3] = 255;
    }
    const sha = createHash('sha256').update(rgba).digest('hex');
    this.pngs.set(sha, encodePngStored(rgba, width, height));
    return { maskSha256: sha, width, height, coverage: 0.5, segmenter: 'fake' };
  }

  store(img: RawImage): string {
    const sha = createHash('sha256').update(`${img.width}x${img.height}:`).update(img.rgba).digest('hex');
    this.blobs.set(sha, img);
    return sha;
  }

  private addNode(documentId: string, parentId: string | null, kind: 'source' | 'edit', instruction: string | null, variation: number | null, sha: string) {
    const node = { id: randomUUID(), documentId, parentId, kind, instruction, seed: kind === 'edit' ? 1234 : null, variation, resultImageSha256: sha, createdAt: new Date(0).toISOString(), authorName: this.authorName };
    this.nodes.push(node);
    return node;
  }

  private job(jobId: string): FakeJob {
    const job = this.jobs.find((j) => j.id === jobId);
    if (!job) throw new ClientError('not-found', `job ${jobId} not found`, 404, 'NOT_FOUND');
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
