/**
 * The panel's view of the layerloop server: a thin typed client over `fetch` (UXP has fetch, no EventSource).
 *
 * tRPC procedures are called with tRPC v11's plain HTTP wire format (what @trpc/client's httpLink sends, no
 * transformer, no batching): queries as `GET <server>/trpc/<path>?input=<JSON>`, mutations as
 * `POST <server>/trpc/<path>` with a JSON body; answers `{result:{data}}` or `{error:{message, data:{code,
 * httpStatus}}}`. Not @trpc/client itself: its httpLink tests every input with `instanceof FormData` and makes an
 * AbortController per call, and UXP has FormData only from 7.3 (Photoshop 25.2) while the plugin supports 24.4.
 * The client is bound to the server's `AppRouter` at compile time instead: test/unit/plugin-uxp/contract.test.ts
 * fails the typecheck when these procedures' inputs or outputs drift from server/api/router.ts.
 *
 * Bytes go through the plain routes: `PUT /v1/blobs?width=&height=` (raw RGBA, application/octet-stream) and
 * `GET /v1/blobs/:sha256?format=rgba` (raw RGBA with X-Image-Width / X-Image-Height headers: UXP cannot
 * decode PNG), plus `GET /v1/blobs/:sha256` (PNG) for variation thumbnails shown as data URLs.
 */
import {
  createEditResultSchema,
  formatIssues,
  jobSnapshotSchema,
  type EditRequestInput,
  type JobSnapshot,
} from '../../shared/protocol';
import { UserError } from './errors';

/** Where the server mounts tRPC. */
export const TRPC_PATH = '/trpc';

/** The tRPC procedures the panel calls (test/unit/plugin-uxp/contract.test.ts checks them against AppRouter). */
export const PROCEDURES = {
  health: 'health',
  openDocument: 'documents.open',
  history: 'documents.history',
  createEdit: 'edits.create',
  getJob: 'jobs.get',
  cancelJob: 'jobs.cancel',
} as const;
export const DEFAULT_SERVER_URL = 'http://localhost:7860';

/** The part of fetch's Response the client reads (UXP's Response and Node's both fit). */
export interface ResponseLike {
  ok: boolean;
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export type FetchLike = (
  url: string,
  init: { method: 'GET' | 'POST' | 'PUT'; headers: Record<string, string>; body?: string | Uint8Array },
) => Promise<ResponseLike>;

export interface ServerConfig {
  serverUrl: string;
  /** bearer token; '' = none */
  token: string;
}

export interface HistoryNode {
  id: string;
  parentId: string | null;
  kind: 'source' | 'edit';
  instruction: string | null;
  seed: number | null;
  variation: number | null;
  resultImageSha256: string;
  createdAt: string;
}

export interface CreatedEdit {
  jobId: string;
  position: number;
  /** the seed the server chose or was given (when the server reports it) */
  seed: number | null;
}

export interface RawImage {
  width: number;
  height: number;
  /** width*height*4, straight alpha */
  rgba: Uint8Array;
}

export interface LayerloopApi {
  health(): Promise<void>;
  /** documents.open: the server's document id for this host document key (the same key gives the same id) */
  openDocument(hostDocumentKey: string): Promise<string>;
  /** documents.history, parents before children */
  history(documentId: string): Promise<HistoryNode[]>;
  createEdit(request: EditRequestInput): Promise<CreatedEdit>;
  getJob(jobId: string, previewAfterStep?: number): Promise<JobSnapshot>;
  cancelJob(jobId: string): Promise<void>;
  /** PUT /v1/blobs: returns the sha256 */
  uploadRgba(rgba: Uint8Array, width: number, height: number): Promise<string>;
  downloadRgba(sha256: string): Promise<RawImage>;
  /** the PNG as a data: URL (thumbnails) */
  downloadPngDataUrl(sha256: string): Promise<string>;
}

/** A failed call: the message is for the user; `code` is tRPC's error code (e.g. 'NOT_FOUND') when known. */
export class ApiError extends UserError {
  constructor(
    message: string,
    readonly code: string | null = null,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function normalizeServerUrl(url: string): string {
  return url.trim().replace(/\/+$/, '');
}

/** Why a server URL is unusable, or null. */
export function serverUrlProblem(url: string): string | null {
  const u = normalizeServerUrl(url);
  if (!u) return 'Set the server URL in Settings, e.g. http://localhost:7860.';
  if (!/^https?:\/\/[^/\s?#]+(\/[^\s?#]*)?$/i.test(u)) {
    return `The server URL "${u}" is not an http:// or https:// address (e.g. http://localhost:7860).`;
  }
  return null;
}

export function createHttpApi(fetchFn: FetchLike, config: () => ServerConfig): LayerloopApi {
  const base = (): string => {
    const url = normalizeServerUrl(config().serverUrl);
    const problem = serverUrlProblem(url);
    if (problem) throw new ApiError(problem);
    return url;
  };
  const authHeaders = (): Record<string, string> => {
    const token = config().token.trim();
    return token ? { authorization: `Bearer ${token}` } : {};
  };

  async function send(url: string, init: Parameters<FetchLike>[1]): Promise<ResponseLike> {
    try {
      return await fetchFn(url, init);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new ApiError(
        `Cannot reach the layerloop server at ${base()} (${why}): check that it is running, that the URL in Settings is right, and that the address is listed in the plugin's manifest.json (requiredPermissions.network.domains).`,
      );
    }
  }

  async function call(type: 'query' | 'mutation', path: string, input: unknown): Promise<unknown> {
    const root = `${base()}${TRPC_PATH}/${path}`;
    const res =
      type === 'query'
        ? await send(input === undefined ? root : `${root}?input=${encodeURIComponent(JSON.stringify(input))}`, {
            method: 'GET',
            headers: authHeaders(),
          })
        : await send(root, {
            method: 'POST',
            headers: { ...authHeaders(), 'content-type': 'application/json' },
            body: input === undefined ? undefined : JSON.stringify(input),
          });
    const body = await readJson(res);
    if (isObject(body) && isObject(body.result) && 'data' in body.result) return body.result.data;
    throw failure(res, body, path);
  }

  function failure(res: ResponseLike, body: unknown, what: string): ApiError {
    const err = isObject(body) && isObject(body.error) ? body.error : null;
    const data = err && isObject(err.data) ? err.data : null;
    const code = data && typeof data.code === 'string' ? data.code : null;
    // tRPC: {error:{message}}; plain routes: {error:"..."} or {message:"..."}
    const serverMessage =
      err && typeof err.message === 'string'
        ? err.message
        : isObject(body) && typeof body.error === 'string'
          ? body.error
          : isObject(body) && typeof body.message === 'string'
            ? body.message
            : null;
    if (res.status === 401 || res.status === 403 || code === 'UNAUTHORIZED' || code === 'FORBIDDEN') {
      return new ApiError(`The server refused the request${serverMessage ? ` (${serverMessage})` : ''}: set the server's token in Settings.`, code, res.status);
    }
    if (serverMessage) return new ApiError(serverMessage, code, res.status);
    return new ApiError(
      `The server at ${base()} did not answer ${what} as a layerloop server does (HTTP ${res.status}): check the server URL in Settings.`,
      code,
      res.status,
    );
  }

  async function readJson(res: ResponseLike): Promise<unknown> {
    const text = await res.text();
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return null;
    }
  }

  async function bytes(url: string, what: string): Promise<ResponseLike> {
    const res = await send(url, { method: 'GET', headers: authHeaders() });
    if (!res.ok) throw failure(res, await readJson(res), what);
    return res;
  }

  return {
    async health() {
      await call('query', PROCEDURES.health, undefined);
    },

    async openDocument(hostDocumentKey) {
      const out = await call('mutation', PROCEDURES.openDocument, { host: 'photoshop', hostDocumentKey });
      if (isObject(out) && typeof out.documentId === 'string') return out.documentId;
      throw unexpected('documents.open');
    },

    async history(documentId) {
      const out = await call('query', PROCEDURES.history, { documentId });
      if (!isObject(out) || !Array.isArray(out.nodes)) throw unexpected('documents.history');
      return out.nodes.filter(isObject).map(toHistoryNode);
    },

    async createEdit(request) {
      const out = await call('mutation', PROCEDURES.createEdit, request);
      const parsed = createEditResultSchema.safeParse(out);
      if (!parsed.success) throw unexpected('edits.create', formatIssues(parsed.error));
      const seed = isObject(out) && typeof out.seed === 'number' ? out.seed : null;
      return { jobId: parsed.data.jobId, position: parsed.data.position, seed };
    },

    async getJob(jobId, previewAfterStep) {
      const out = await call('query', PROCEDURES.getJob, previewAfterStep === undefined ? { jobId } : { jobId, previewAfterStep });
      const parsed = jobSnapshotSchema.safeParse(out);
      if (!parsed.success) throw unexpected('jobs.get', formatIssues(parsed.error));
      return parsed.data;
    },

    async cancelJob(jobId) {
      await call('mutation', PROCEDURES.cancelJob, { jobId });
    },

    async uploadRgba(rgba, width, height) {
      const res = await send(`${base()}/v1/blobs?width=${width}&height=${height}`, {
        method: 'PUT',
        headers: { ...authHeaders(), 'content-type': 'application/octet-stream' },
        body: rgba,
      });
      const body = await readJson(res);
      if (!res.ok) throw failure(res, body, 'the upload');
      if (isObject(body) && typeof body.sha256 === 'string' && /^[0-9a-f]{64}$/.test(body.sha256)) return body.sha256;
      throw unexpected('PUT /v1/blobs');
    },

    async downloadRgba(sha256) {
      const res = await bytes(`${base()}/v1/blobs/${sha256}?format=rgba`, 'the result download');
      const width = Number(res.headers.get('x-image-width'));
      const height = Number(res.headers.get('x-image-height'));
      const rgba = new Uint8Array(await res.arrayBuffer());
      if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || rgba.length !== width * height * 4) {
        throw new ApiError(
          `The server sent result ${sha256.slice(0, 12)} in an unexpected form (X-Image-Width ${res.headers.get('x-image-width')}, X-Image-Height ${res.headers.get('x-image-height')}, ${rgba.length} bytes): is it a layerloop server with raw RGBA downloads (GET /v1/blobs/:sha256?format=rgba)?`,
        );
      }
      return { width, height, rgba };
    },

    async downloadPngDataUrl(sha256) {
      const res = await bytes(`${base()}/v1/blobs/${sha256}`, 'the thumbnail download');
      return `data:image/png;base64,${base64(new Uint8Array(await res.arrayBuffer()))}`;
    },
  };
}

function unexpected(what: string, detail?: string): ApiError {
  return new ApiError(
    `The server's answer to ${what} is not what this plugin expects${detail ? ` (${detail.split('\n')[0]})` : ''}: update the plugin or the server so their versions match.`,
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function toHistoryNode(n: Record<string, unknown>): HistoryNode {
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    id: str(n.id) ?? '',
    parentId: str(n.parentId),
    kind: n.kind === 'source' ? 'source' : 'edit',
    instruction: str(n.instruction),
    seed: num(n.seed),
    variation: num(n.variation),
    resultImageSha256: str(n.resultImageSha256) ?? '',
    createdAt: str(n.createdAt) ?? '',
  };
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 (UXP does not document btoa). */
export function base64(bytes: Uint8Array): string {
  const parts: string[] = [];
  let chunk = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const a = bytes[i];
    const b = i + 1 < bytes.length ? bytes[i + 1] : 0;
    const c = i + 2 < bytes.length ? bytes[i + 2] : 0;
    const n = (a << 16) | (b << 8) | c;
    chunk += B64[(n >> 18) & 63] + B64[(n >> 12) & 63] + (i + 1 < bytes.length ? B64[(n >> 6) & 63] : '=') + (i + 2 < bytes.length ? B64[n & 63] : '=');
    if (chunk.length >= 8192) {
      parts.push(chunk);
      chunk = '';
    }
  }
  parts.push(chunk);
  return parts.join('');
}
