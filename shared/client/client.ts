/**
 * The layerloop client shared by the Figma plugin's UI, the Photoshop panel and the playground: tRPC's HTTP wire
 * format spoken over plain `fetch` (no @trpc/client: UXP has no EventSource, and FormData only from Photoshop
 * 25.2), the two blob routes, and `follow(jobId)`, which yields the job's events over SSE (read from a fetch
 * stream) or by polling jobs.get, the same JobEvents either way.
 *
 * Wire format (tRPC v11, no transformer, no batching): queries `GET <server>/trpc/<path>?input=<JSON>`,
 * mutations `POST <server>/trpc/<path>` with a JSON body, answers `{result:{data}}` or `{error:{message,
 * data:{code, httpStatus}}}`; subscriptions `GET <server>/trpc/jobs.watch?input=..&connectionParams=..` as an
 * event stream. Auth: `Authorization: Bearer <token>` on every request; the subscription also carries the token
 * in its connection params (the server accepts tokens in URLs for subscriptions only).
 *
 * Types: the inputs and outputs below are checked against the server's AppRouter at compile time by
 * test/unit/client/contract.test.ts (this module imports no server code: the Photoshop panel compiles without
 * Node's types). Only zod from shared/protocol runs here, so it bundles into a Figma iframe and a UXP panel.
 */
import {
  createEditResultSchema,
  formatIssues,
  maskPreviewResultSchema,
  isTerminalJobEvent,
  jobEventSchema,
  jobSnapshotSchema,
  jobStateSchema,
  SHA256_PATTERN,
  type CreateEditResult,
  type EditRequestInput,
  type Host,
  type JobEvent,
  type JobSnapshot,
  type JobState,
  type MaskPreviewInput,
  type MaskPreviewResult,
} from '../protocol';
import { aborted, ClientError, errorForStatus } from './errors';
import { snapshotToEvents } from './follow';

// ------------------------------------------------------------------------------------------ the host's fetch

/** What the client needs of an AbortSignal (UXP and browsers have one; the client only listens). */
export interface SignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface FetchInit {
  method: 'GET' | 'POST' | 'PUT';
  headers: Record<string, string>;
  body?: string | Uint8Array;
  signal?: SignalLike;
}

interface StreamReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(): Promise<void>;
}

/** The part of fetch's Response the client reads (a browser's, UXP's and Node's all fit). */
export interface ResponseLike {
  ok: boolean;
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
  /** a readable stream (browsers, Node); UXP's fetch may have none: follow() then polls */
  body?: { getReader(): StreamReader } | null;
}

export type FetchLike = (url: string, init: FetchInit) => Promise<ResponseLike>;

// ------------------------------------------------------------------------------------------ what it returns

export interface ServerHealth {
  /** degraded: the server cannot store edits now (store.problems says why) */
  status: 'ok' | 'degraded' | 'shutting-down';
  version: string;
  /** family and readsReferences: servers from before the FLUX.2 klein family omit them */
  model: { name: string; provider: string; family?: string; readsReferences?: boolean };
  queue: { queued: number; running: number };
  store: { writable: boolean; problems: string[] };
  authRequired: boolean;
}

/** Who the server takes the client for (`me`): the panels show it. */
export interface SignedIn {
  user: { id: string; name: string; role: 'admin' | 'member' };
  workspaces: { id: string; name: string }[];
  defaultWorkspaceId: string;
  /** a personal token, the server's shared token, or none (a loopback server without a token) */
  via: 'token' | 'shared-token' | 'loopback';
}

/**
 * "ben (studio-a)": the user and its default workspace, as the panels show them; null unless signed in with a
 * personal token (the shared token and a token-less server are the server's default user: nothing to show).
 */
export function signedInLabel(me: SignedIn | null): string | null {
  if (!me || me.via !== 'token') return null;
  const workspace = me.workspaces.find((w) => w.id === me.defaultWorkspaceId) ?? me.workspaces[0];
  return workspace ? `${me.user.name} (${workspace.name})` : me.user.name;
}

/** One node of a document's history (documents.history), parents before children. */
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
  /** who added the node: the user's name; null for the server's default user, or from a server before accounts */
  authorName: string | null;
}

/** "by ben": an entry's author as the history lists show it ('' when the server names none). */
export function authorLabel(entry: Pick<HistoryEntry, 'authorName'>): string {
  return entry.authorName ? `by ${entry.authorName}` : '';
}

/** "tiny-klein-distilled (FLUX.2 [klein]) on cpu": the model a server runs, with its family when the server says it. */
export function modelLabel(model: ServerHealth['model']): string {
  return `${model.name}${model.family ? ` (${model.family})` : ''} on ${model.provider}`;
}

export interface BlobInfo {
  sha256: string;
  width: number;
  height: number;
}

export interface RawImage {
  width: number;
  height: number;
  /** width*height*4, straight alpha */
  rgba: Uint8Array;
}

export interface CancelResult {
  /** false when the job had already finished */
  cancelled: boolean;
  state: JobState;
}

/** What an upload holds: an encoded image, or raw RGBA of a given size (the Photoshop panel cannot encode). */
export type ImageBody = { contentType: 'image/png' | 'image/jpeg' | 'image/webp' } | { rgba: { width: number; height: number } };

export interface LayerloopClient {
  readonly serverUrl: string;
  health(): Promise<ServerHealth>;
  /** who the token signs in as; null from a server without accounts (older than `me`) */
  me(): Promise<SignedIn | null>;
  /**
   * documents.open: the server's document id for the host's key (the same key gives the same id) in the caller's
   * default workspace or `workspaceId`; with `create: false` a ClientError 'not-found' when that workspace has no
   * history for the key (openHistory in history-marker.ts decides when to ask for that)
   */
  openDocument(host: Host, hostDocumentKey: string, options?: { workspaceId?: string; create?: boolean }): Promise<string>;
  history(documentId: string): Promise<HistoryEntry[]>;
  createEdit(request: EditRequestInput, signal?: SignalLike): Promise<CreateEditResult>;
  /** masks.preview: the mask a region's maskText would get (a grayscale PNG blob), before Apply */
  previewMask(input: MaskPreviewInput, signal?: SignalLike): Promise<MaskPreviewResult>;
  getJob(jobId: string, previewAfterStep?: number, signal?: SignalLike): Promise<JobSnapshot>;
  cancelJob(jobId: string): Promise<CancelResult>;
  /** the job's events until (and including) the terminal one */
  follow(jobId: string, signal?: SignalLike): AsyncGenerator<JobEvent>;
  /** PUT /v1/blobs */
  putImage(bytes: Uint8Array, body: ImageBody, signal?: SignalLike): Promise<BlobInfo>;
  /** GET /v1/blobs/:sha256, as stored (PNG for results) */
  getBlob(sha256: string, signal?: SignalLike): Promise<Uint8Array>;
  /** GET /v1/blobs/:sha256?format=rgba: decoded by the server */
  getRgba(sha256: string, signal?: SignalLike): Promise<RawImage>;
}

export interface ClientOptions {
  serverUrl: string;
  /** bearer token; '' = none */
  token: string;
  fetch: FetchLike;
  /** how follow() gets the events: 'sse' (falls back to polling when the stream fails), or 'poll' only */
  transport: 'sse' | 'poll';
  /** the host's advice for a request that got no answer (manifest domains, mixed content, ...) */
  networkHint?: string;
  /** between polls (jobs.get is cheap enough for 500 ms) */
  pollMs?: number;
  /** the wait between polls; default setTimeout */
  sleep?: (ms: number, signal?: SignalLike) => Promise<void>;
}

/** consecutive failed polls before follow() gives up */
export const MAX_POLL_FAILURES = 5;

export function normalizeServerUrl(url: string): string {
  return url.trim().replace(/\/+$/, '');
}

function defaultSleep(ms: number, signal?: SignalLike): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort);
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unexpected(what: string, detail?: string): ClientError {
  return new ClientError('protocol', `The server's answer to ${what} is not what this client expects${detail ? ` (${detail.split('\n')[0]})` : ''}: update the plugin or the server so their versions match.`);
}

/** The TextDecoder of this runtime, if it has one (UXP does not document it). */
function textDecoder(): { decode(bytes: Uint8Array, options?: { stream: boolean }): string } | null {
  const Decoder = (globalThis as { TextDecoder?: new () => { decode(bytes: Uint8Array, options?: { stream: boolean }): string } }).TextDecoder;
  return Decoder ? new Decoder() : null;
}

export function createClient(options: ClientOptions): LayerloopClient {
  const serverUrl = normalizeServerUrl(options.serverUrl);
  const token = options.token.trim();
  const hint = options.networkHint ?? '';
  const pollMs = options.pollMs ?? 500;
  const sleep = options.sleep ?? defaultSleep;
  const auth = (): Record<string, string> => (token ? { Authorization: `Bearer ${token}` } : {});

  async function send(url: string, init: FetchInit): Promise<ResponseLike> {
    if (init.signal?.aborted) throw aborted();
    try {
      return await options.fetch(url, init);
    } catch (err) {
      if (init.signal?.aborted || (err instanceof Error && err.name === 'AbortError')) throw aborted();
      throw errorForStatus(serverUrl, null, null, err instanceof Error ? err.message : String(err), hint);
    }
  }

  async function readJson(res: ResponseLike): Promise<unknown> {
    try {
      return JSON.parse(await res.text()) as unknown;
    } catch {
      return null;
    }
  }

  /** The error an answer that is not `ok` (or a tRPC error body) stands for. */
  function failure(res: ResponseLike, body: unknown): ClientError {
    const err = isObject(body) && isObject(body.error) ? body.error : null;
    const data = err && isObject(err.data) ? err.data : null;
    const code = data && typeof data.code === 'string' ? data.code : null;
    const status = data && typeof data.httpStatus === 'number' ? data.httpStatus : res.status;
    // tRPC: {error:{message}}; the blob routes: {error:"..."}
    const message = err && typeof err.message === 'string' ? err.message : isObject(body) && typeof body.error === 'string' ? body.error : null;
    return errorForStatus(serverUrl, status, code, message, hint);
  }

  async function call(kind: 'query' | 'mutation', path: string, input: unknown, signal?: SignalLike): Promise<unknown> {
    const url = `${serverUrl}/trpc/${path}`;
    const res =
      kind === 'query'
        ? await send(input === undefined ? url : `${url}?input=${encodeURIComponent(JSON.stringify(input))}`, { method: 'GET', headers: auth(), signal })
        : await send(url, { method: 'POST', headers: { ...auth(), 'Content-Type': 'application/json' }, body: JSON.stringify(input ?? null), signal });
    const body = await readJson(res);
    if (res.ok && isObject(body) && isObject(body.result) && 'data' in body.result) return body.result.data;
    if (res.ok) throw unexpected(path);
    throw failure(res, body);
  }

  async function blob(path: string, signal?: SignalLike): Promise<ResponseLike> {
    const res = await send(`${serverUrl}${path}`, { method: 'GET', headers: auth(), signal });
    if (!res.ok) throw failure(res, await readJson(res));
    return res;
  }

  async function getJob(jobId: string, previewAfterStep?: number, signal?: SignalLike): Promise<JobSnapshot> {
    const out = await call('query', 'jobs.get', previewAfterStep === undefined ? { jobId } : { jobId, previewAfterStep }, signal);
    const parsed = jobSnapshotSchema.safeParse(out);
    if (!parsed.success) throw unexpected('jobs.get', formatIssues(parsed.error));
    return parsed.data;
  }

  /** The job's events over SSE until the terminal one, or the end of the stream; throws when it cannot stream. */
  async function* streamEvents(jobId: string, signal?: SignalLike): AsyncGenerator<JobEvent> {
    const decoder = textDecoder();
    if (!decoder) throw new ClientError('protocol', 'this runtime cannot decode a stream');
    const query = `input=${encodeURIComponent(JSON.stringify({ jobId }))}${token ? `&connectionParams=${encodeURIComponent(JSON.stringify({ token }))}` : ''}`;
    const res = await send(`${serverUrl}/trpc/jobs.watch?${query}`, { method: 'GET', headers: { ...auth(), Accept: 'text/event-stream' }, signal });
    if (!res.ok) throw failure(res, await readJson(res));
    const reader = res.body?.getReader();
    if (!reader) throw new ClientError('protocol', 'this runtime cannot read a response as a stream');
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value ?? new Uint8Array(0), { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of message.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
          }
          if (event === 'return') return;
          if (event === 'serialized-error') throw failure(res, { error: JSON.parse(data || 'null') });
          if (event !== 'message') continue; // connected, ping, restore-id
          const parsed = jobEventSchema.safeParse(JSON.parse(data));
          if (!parsed.success) throw unexpected('jobs.watch', formatIssues(parsed.error));
          yield parsed.data;
        }
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  /** The job's events by polling jobs.get; network hiccups are retried a few times, with back-off. */
  async function* pollEvents(jobId: string, afterSeq: number, signal?: SignalLike): AsyncGenerator<JobEvent> {
    let prev: JobSnapshot | null = null;
    let failures = 0;
    for (;;) {
      let snapshot: JobSnapshot;
      try {
        snapshot = await getJob(jobId, prev?.previewStep ?? undefined, signal);
        failures = 0;
      } catch (err) {
        if (!(err instanceof ClientError)) throw err;
        if (err.kind === 'not-found') {
          throw new ClientError('not-found', `The server no longer knows this edit (${err.message}): it may have restarted. Apply again.`, err.status, err.code);
        }
        if (err.kind !== 'network' || ++failures >= MAX_POLL_FAILURES) {
          throw err.kind === 'network' ? new ClientError('network', `Lost contact with the server while the edit was running (${err.message}) If it finishes, it appears in the history.`) : err;
        }
        await sleep(pollMs * 2 ** failures, signal);
        continue;
      }
      for (const event of snapshotToEvents(prev, snapshot)) {
        // what the stream already delivered before it broke is not said twice
        if (event.seq <= afterSeq && !isTerminalJobEvent(event)) continue;
        yield event;
        if (isTerminalJobEvent(event)) return;
      }
      // keep the step of the preview already shown when the server left it out
      const shownStep: number | null = prev === null ? null : prev.previewStep;
      prev = { ...snapshot, previewStep: snapshot.previewStep ?? shownStep };
      await sleep(pollMs, signal);
    }
  }

  return {
    serverUrl,

    async health() {
      const out = await call('query', 'health', undefined);
      if (!isObject(out) || !isObject(out.model) || typeof out.version !== 'string') throw unexpected('health');
      return out as unknown as ServerHealth;
    },

    async me() {
      let out: unknown;
      try {
        out = await call('query', 'me', undefined);
      } catch (err) {
        if (err instanceof ClientError && err.status === 404) return null; // a server from before accounts
        throw err;
      }
      if (!isObject(out) || !isObject(out.user) || typeof out.user.name !== 'string' || !Array.isArray(out.workspaces)) throw unexpected('me');
      return out as unknown as SignedIn;
    },

    async openDocument(host, hostDocumentKey, options = {}) {
      const out = await call('mutation', 'documents.open', { host, hostDocumentKey, ...options });
      if (isObject(out) && typeof out.documentId === 'string') return out.documentId;
      throw unexpected('documents.open');
    },

    async history(documentId) {
      const out = await call('query', 'documents.history', { documentId });
      if (!isObject(out) || !Array.isArray(out.nodes)) throw unexpected('documents.history');
      return out.nodes.filter(isObject).map((n) => ({
        id: String(n.id),
        parentId: typeof n.parentId === 'string' ? n.parentId : null,
        kind: n.kind === 'source' ? 'source' : 'edit',
        instruction: typeof n.instruction === 'string' ? n.instruction : null,
        resultImageSha256: String(n.resultImageSha256),
        seed: typeof n.seed === 'number' ? n.seed : null,
        variation: typeof n.variation === 'number' ? n.variation : null,
        createdAt: String(n.createdAt),
        authorName: typeof n.authorName === 'string' ? n.authorName : null,
      }));
    },

    async createEdit(request, signal) {
      const out = await call('mutation', 'edits.create', request, signal);
      const parsed = createEditResultSchema.safeParse(out);
      if (!parsed.success) throw unexpected('edits.create', formatIssues(parsed.error));
      return parsed.data;
    },

    async previewMask(input, signal) {
      const out = await call('mutation', 'masks.preview', input, signal);
      const parsed = maskPreviewResultSchema.safeParse(out);
      if (!parsed.success) throw unexpected('masks.preview', formatIssues(parsed.error));
      return parsed.data;
    },

    getJob,

    async cancelJob(jobId) {
      const out = await call('mutation', 'jobs.cancel', { jobId });
      const state = jobStateSchema.safeParse(isObject(out) ? out.state : undefined);
      if (!isObject(out) || typeof out.cancelled !== 'boolean' || !state.success) throw unexpected('jobs.cancel');
      return { cancelled: out.cancelled, state: state.data };
    },

    async *follow(jobId, signal) {
      let lastSeq = 0;
      if (options.transport === 'sse') {
        try {
          for await (const event of streamEvents(jobId, signal)) {
            lastSeq = Math.max(lastSeq, event.seq);
            yield event;
            if (isTerminalJobEvent(event)) return;
          }
        } catch (err) {
          if (signal?.aborted) throw aborted();
          if (err instanceof ClientError && (err.kind === 'auth' || err.kind === 'not-found')) throw err;
          // a proxy that buffers, a runtime without streams, a dropped connection: polling picks up from here
        }
      }
      yield* pollEvents(jobId, lastSeq, signal);
    },

    async putImage(bytes, body, signal) {
      const path = 'rgba' in body ? `/v1/blobs?width=${body.rgba.width}&height=${body.rgba.height}` : '/v1/blobs';
      const contentType = 'rgba' in body ? 'application/octet-stream' : body.contentType;
      const res = await send(`${serverUrl}${path}`, { method: 'PUT', headers: { ...auth(), 'Content-Type': contentType }, body: bytes, signal });
      const out = await readJson(res);
      if (!res.ok) throw failure(res, out);
      if (isObject(out) && typeof out.sha256 === 'string' && SHA256_PATTERN.test(out.sha256)) {
        return { sha256: out.sha256, width: Number(out.width), height: Number(out.height) };
      }
      throw unexpected('PUT /v1/blobs');
    },

    async getBlob(sha256, signal) {
      return new Uint8Array(await (await blob(`/v1/blobs/${sha256}`, signal)).arrayBuffer());
    },

    async getRgba(sha256, signal) {
      const res = await blob(`/v1/blobs/${sha256}?format=rgba`, signal);
      const width = Number(res.headers.get('x-image-width'));
      const height = Number(res.headers.get('x-image-height'));
      const rgba = new Uint8Array(await res.arrayBuffer());
      if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || rgba.length !== width * height * 4) {
        throw unexpected(`GET /v1/blobs/${sha256.slice(0, 12)}?format=rgba`, `X-Image-Width ${res.headers.get('x-image-width')}, X-Image-Height ${res.headers.get('x-image-height')}, ${rgba.length} bytes`);
      }
      return { width, height, rgba };
    },
  };
}
