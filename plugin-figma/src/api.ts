/**
 * The server as the UI sees it: a small typed interface (the UI's port to the network), the error type the
 * panel shows, and the pure helpers behind the real client (trpc-api.ts). Tests drive the UI logic with a
 * fake of this interface; nothing here touches the DOM or the network.
 */
import type { CreateEditResult, EditRequestInput, JobEvent, JobSnapshot } from '../../shared/protocol';

export interface BlobInfo {
  sha256: string;
  width: number;
  height: number;
}

/** One node of the document's history, as the panel lists it. */
export interface HistoryEntry {
  id: string;
  parentId: string | null;
  kind: 'source' | 'edit';
  /** null for source nodes */
  instruction: string | null;
  resultImageSha256: string;
  seed: number | null;
  variation: number | null;
  /** ISO time */
  createdAt: string;
}

export interface ServerHealth {
  /** e.g. "tiny-pix2pix on cpu" */
  model: string;
  version: string;
  authRequired: boolean;
}

export interface LayerloopApi {
  readonly serverUrl: string;
  health(): Promise<ServerHealth>;
  /** documents.open {host: 'figma', hostDocumentKey} -> documentId */
  openDocument(hostDocumentKey: string): Promise<string>;
  history(documentId: string): Promise<HistoryEntry[]>;
  createEdit(request: EditRequestInput, signal?: AbortSignal): Promise<CreateEditResult>;
  /** the job's events until (and including) the terminal one; SSE, falling back to polling jobs.get */
  watchJob(jobId: string, signal: AbortSignal): AsyncIterable<JobEvent>;
  cancelJob(jobId: string): Promise<void>;
  putPng(png: Uint8Array, signal?: AbortSignal): Promise<BlobInfo>;
  getBlob(sha256: string, signal?: AbortSignal): Promise<Uint8Array>;
}

export type ApiErrorKind = 'network' | 'auth' | 'not-found' | 'busy' | 'bad-request' | 'server' | 'aborted';

/** A failed call, with a message that says what to do. */
export class ApiError extends Error {
  constructor(
    readonly kind: ApiErrorKind,
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isAbortError(err: unknown): boolean {
  return (err instanceof ApiError && err.kind === 'aborted') || (err instanceof Error && err.name === 'AbortError');
}

/**
 * The user-facing error for an HTTP status (or a request that never got one: status null). `serverMessage`
 * is the server's own text (its 4xx messages already say what to fix).
 */
export function errorForStatus(serverUrl: string, status: number | null, serverMessage: string | null): ApiError {
  const said = serverMessage ? `: ${serverMessage}` : '';
  if (status === null) {
    return new ApiError(
      'network',
      `Can't reach the layerloop server at ${serverUrl}. Start it (npm start), check the URL in Settings, and that manifest.json's networkAccess allows it.`,
    );
  }
  if (status === 401 || status === 403) {
    return new ApiError('auth', `The server at ${serverUrl} did not accept the token (or needs one). Paste the token it was started with (--token / LAYERLOOP_TOKEN) into Settings.`, status);
  }
  if (status === 404) return new ApiError('not-found', serverMessage ?? `${serverUrl} answered 404: is it a layerloop server? Check the URL in Settings.`, status);
  if (status === 413) return new ApiError('bad-request', `The image is too large for the server${said}. Edit a smaller layer.`, status);
  if (status === 429) return new ApiError('busy', `The server's queue is full${said}. Wait for running edits to finish, then Apply again.`, status);
  if (status === 503) return new ApiError('busy', `The server is not taking edits right now${said}. Try again in a moment, or restart it.`, status);
  if (status >= 400 && status < 500) return new ApiError('bad-request', serverMessage ?? `The server refused the request (${status}).`, status);
  return new ApiError('server', `The server failed (${status})${said}. Its log says more; try again.`, status);
}

// ---------------------------------------------------------------------------------------- polling

/**
 * The events a client following a job by polling (jobs.get) has not seen yet, from the previous snapshot
 * (null before the first) and the new one. Used when SSE is not available; the events carry the snapshot's
 * lastSeq (at least 1).
 */
export function snapshotToEvents(prev: JobSnapshot | null, next: JobSnapshot): JobEvent[] {
  const base = { jobId: next.jobId, seq: Math.max(1, next.lastSeq) };
  const events: JobEvent[] = [];
  if (next.state === 'queued') {
    if (next.position !== null && (prev === null || prev.position !== next.position)) events.push({ type: 'queued', ...base, position: next.position });
    return events;
  }
  if ((prev === null || prev.state === 'queued') && next.startedAt !== null) events.push({ type: 'started', ...base });
  if (next.progress && (prev?.progress?.step !== next.progress.step || prev?.progress?.variation !== next.progress.variation)) {
    events.push({ type: 'progress', ...base, ...next.progress });
  }
  if (next.previewDataUrl && next.previewDataUrl.startsWith('data:image/png;base64,')) {
    const progress = next.progress ?? { step: next.previewStep ?? 0, totalSteps: 0, variation: 0 };
    events.push({ type: 'preview', ...base, ...progress, step: next.previewStep ?? progress.step, dataUrl: next.previewDataUrl });
  }
  if (next.state === 'succeeded') {
    if (next.result) events.push({ type: 'succeeded', ...base, ...next.result });
    else events.push({ type: 'failed', ...base, message: 'the edit finished but its results are gone from the server' });
  } else if (next.state === 'failed') {
    events.push({ type: 'failed', ...base, message: next.error ?? 'the edit failed' });
  } else if (next.state === 'cancelled') {
    events.push({ type: 'cancelled', ...base });
  }
  return events;
}
