/**
 * The HTTP front: one node:http request handler for everything the server answers.
 *
 *   OPTIONS *               CORS preflight (allowed origins only: see browser-access.ts)
 *   GET     /               the playground page (dist/web/playground.html, built from server/web/)
 *   PUT     /v1/blobs       an image (PNG/JPEG/WebP, or raw RGBA with ?width=&height=) -> {sha256, width, height}
 *   GET     /v1/blobs/:sha  the stored bytes (immutable: cached forever, ETag, 304)
 *   *       /trpc/...       the tRPC API (server/api/router.ts), subscriptions over SSE
 *   GET     /metrics        Prometheus metrics (server/metrics.ts), text format 0.0.4; admins only (others: 404)
 *
 * Before routing, browser-access.ts turns away web pages the server does not serve (403). Everything except
 * OPTIONS, the playground page and `health` acts as a user (server/auth/authenticate.ts): a personal token, the
 * shared token, or none on a token-less loopback server. Blobs are served only to a workspace that uploaded or
 * produced them; any other hash answers as an unknown one.
 * Errors outside tRPC are JSON `{error: message}` with a 4xx that says what
 * to fix; nothing a client sends may crash the process.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { MAX_UPLOAD_BYTES } from '../../shared/protocol';
import { appRouter } from '../api/router';
import { inWorkspaces, visibleBlob } from '../api/access';
import { QuotaExceededError, UserLimitError, quotaError, uploadsLimitError } from '../api/limits';
import type { Context, Services } from '../api/trpc';
import { MAX_TRPC_BATCH, MAX_TRPC_BODY_BYTES, storeErrorStatus } from '../api/trpc';
import type { AuthResult } from '../auth/authenticate';
import { sniffImageType } from '../imaging/image';
import { decodeUpload, UploadError } from '../imaging/upload';
import { QueueFullError } from '../jobs/queue';
import { METRICS_CONTENT_TYPE } from '../metrics';
import { type Principal, SHA256_PATTERN, StoreError } from '../store';
import { browserAccess, setCorsHeaders } from './browser-access';
import { noteUser, observeRequest } from './observe';
import { ByteBudget, UPLOAD_BUDGET_BYTES } from './upload-budget';

/** An error with the HTTP status and the message to send. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The client went away mid-request: nothing to answer. */
class ClientGoneError extends Error {}

// ------------------------------------------------------------------------------------------------ auth

/** The Bearer token of an Authorization header; null when there is none (a malformed header counts as a wrong token). */
function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : '';
}

/**
 * The Bearer header, or for a subscription (EventSource cannot send headers) the `token` connection param. Only
 * there: a token in a URL ends up in proxy and browser logs, so nothing else accepts it.
 */
export function presentedToken(req: http.IncomingMessage, subscription?: { connectionParams: Record<string, string | undefined> | null }): string | null {
  const header = bearerToken(req.headers.authorization);
  if (header !== null) return header;
  const param = subscription?.connectionParams?.token;
  return typeof param === 'string' ? param : null;
}

/** The request's user, or a 401 saying what to send. */
async function requireUser(services: Services, req: http.IncomingMessage): Promise<Principal> {
  const result = await services.auth.authenticate(presentedToken(req));
  if (!result.ok) throw new HttpError(401, result.message, { 'WWW-Authenticate': 'Bearer realm="layerloop"' });
  noteUser(req, result.principal);
  return result.principal;
}

// ------------------------------------------------------------------------------------------------ responses

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

function sendError(res: http.ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: message }, headers);
}

/**
 * The playground page, built by esbuild.config.mjs. The server bundle is dist/server/main.js, so it lies in
 * ../web from here. Read on every request (a few tens of KB): a rebuild shows without a restart.
 */
export const PLAYGROUND_PAGE = path.join(__dirname, '..', 'web', 'playground.html');

function missingPlaygroundPage(file: string, reason: string): string {
  const escape = (t: string) => t.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>layerloop: playground not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}code{background:#eee;padding:0 .2em}</style>
</head><body>
<h1>The playground page is not built</h1>
<p>The edit server is running, but it cannot read <code>${escape(file)}</code> (${escape(reason)}).</p>
<p>Build it with <code>npm run build</code> (or start the server with <code>npm start</code>, which builds first), then reload.</p>
<p>The API works regardless: tRPC under <code>/trpc</code> (for example <a href="/trpc/health"><code>/trpc/health</code></a>), images under <code>/v1/blobs</code>.</p>
</body></html>
`;
}

async function sendPlaygroundPage(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  let status = 200;
  let page: Buffer;
  try {
    page = await fs.readFile(PLAYGROUND_PAGE);
  } catch (err) {
    status = 503;
    page = Buffer.from(missingPlaygroundPage(PLAYGROUND_PAGE, (err as NodeJS.ErrnoException).code ?? (err as Error).message));
  }
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': page.length,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    // the page's script and styles are inline; it talks only to this server and shows blobs, previews (data:) and object URLs
    'Content-Security-Policy':
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  });
  res.end(req.method === 'HEAD' ? undefined : page);
}

// ------------------------------------------------------------------------------------------------ blobs

/** The server is busy with other uploads: try again shortly (node discards the unread body, keeping nothing of it). */
function uploadsBusy(): HttpError {
  return new HttpError(503, `the server is busy with other uploads (at most ${UPLOAD_BUDGET_BYTES / 1048576} MiB of them are read and stored at once): try again in a moment`, {
    'Retry-After': '1',
  });
}

/**
 * Reads the body, refusing with 413 as soon as it exceeds `limit` bytes (before reading it all). With a declared
 * length the body is read into one buffer of that size (no chunk list to concatenate); otherwise every chunk must
 * fit the upload budget (503 when it does not).
 */
function readBody(req: http.IncomingMessage, limit: number, declared: number | null, budget: ByteBudget, held: { bytes: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const whole = declared !== null ? Buffer.allocUnsafeSlow(declared) : null;
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null, body?: Buffer) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      if (err) reject(err);
      else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      if (size + chunk.length > limit || (whole && size + chunk.length > whole.length)) {
        req.pause();
        finish(new HttpError(413, `the body is larger than ${limit} bytes (${Math.round(limit / 1048576)} MiB): scale the image down or crop it`, { Connection: 'close' }));
        return;
      }
      if (whole) chunk.copy(whole, size);
      else if (budget.take(chunk.length)) {
        held.bytes += chunk.length;
        chunks.push(chunk);
      } else {
        req.pause();
        finish(uploadsBusy());
        return;
      }
      size += chunk.length;
    };
    req.on('data', onData);
    req.once('end', () => finish(null, whole ? whole.subarray(0, size) : Buffer.concat(chunks, size)));
    req.once('aborted', () => finish(new ClientGoneError('client aborted the upload')));
    req.once('error', (err) => finish(new ClientGoneError(err.message)));
  });
}

async function putBlob(services: Services, principal: Principal, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  const userId = principal.user.id;
  const inFlight = services.uploadsByUser.get(userId) ?? 0;
  if (inFlight >= services.config.maxUploadsPerUser) throw uploadsLimitError(services.config.maxUploadsPerUser);
  const workspaceId = url.searchParams.get('workspace') ?? principal.user.defaultWorkspaceId;
  if (!inWorkspaces(principal, workspaceId)) throw new HttpError(404, `no workspace ${workspaceId.slice(0, 80)}: use one of the workspaces that \`me\` lists`);
  services.uploadsByUser.set(userId, inFlight + 1);
  try {
    await readAndStoreBlob(services, principal, workspaceId, req, res, url);
  } finally {
    const left = (services.uploadsByUser.get(userId) ?? 1) - 1;
    if (left > 0) services.uploadsByUser.set(userId, left);
    else services.uploadsByUser.delete(userId);
  }
}

async function readAndStoreBlob(services: Services, principal: Principal, workspaceId: string, req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toString().trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== '') {
    throw new HttpError(415, `Content-Encoding '${encoding}' is not supported: send the image bytes uncompressed`);
  }
  const header = req.headers['content-length'];
  const declared = header === undefined ? null : Number(header);
  if (declared !== null && declared > MAX_UPLOAD_BYTES) {
    throw new HttpError(413, `the body is ${header} bytes; at most ${MAX_UPLOAD_BYTES} (${MAX_UPLOAD_BYTES / 1048576} MiB) are accepted: scale the image down or crop it`, {
      Connection: 'close',
    });
  }
  // Bodies being read, decoded and stored count against one budget, released once the upload is answered: a
  // burst of big uploads waits (503 + Retry-After) instead of taking the server's memory with it.
  const held = { bytes: 0 };
  if (declared !== null) {
    if (!services.uploads.take(declared)) throw uploadsBusy();
    held.bytes = declared;
  }
  try {
    await storeUpload(services, principal, workspaceId, req, res, url, await readBody(req, MAX_UPLOAD_BYTES, declared, services.uploads, held));
  } finally {
    services.uploads.give(held.bytes);
  }
}

async function storeUpload(services: Services, principal: Principal, workspaceId: string, req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: Buffer): Promise<void> {
  const q = url.searchParams;
  const image = await decodeUpload(body, req.headers['content-type'], { width: q.get('width') ?? q.get('w'), height: q.get('height') ?? q.get('h') });
  const limit = services.config.maxStoredBytesPerUser;
  if (limit !== null) {
    // the decoded size bounds the stored PNG's from above: checked before anything is written
    const stored = await services.store.edits.accounts.storedBytes(principal.user.id);
    const incoming = Math.min(body.length, image.data.byteLength);
    if (stored + incoming > limit) throw quotaError(stored, incoming, limit);
  }
  // answered once readable: the write finishes while the client asks for the edit, and the edit's nodes are
  // only committed once it is durable
  // the grant (this workspace may read it) is part of storing it: a failure of either is the upload's
  const store = async () => {
    const put = await services.images.put(image, { wait: 'readable' });
    await services.store.edits.accounts.grantBlob({ workspaceId, sha256: put.sha256, size: put.size, userId: principal.user.id });
    return put;
  };
  const { sha256, created, size } = await store().catch((err: unknown) => {
    if (err instanceof StoreError && (err.code === 'full' || err.code === 'unavailable')) {
      throw new StoreError(err.code, `the upload was not stored: ${err.message}. Upload it again once that is fixed (the server's health says when)`, { cause: err.cause });
    }
    throw err;
  });
  sendJson(res, created ? 201 : 200, { sha256, width: image.width, height: image.height, size });
}

function etagMatches(header: string | undefined, sha256: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
    return t === '*' || t === sha256;
  });
}

/**
 * GET /v1/blobs/:sha256, as stored, or with ?format=rgba decoded to raw straight-alpha RGBA8 (rows top to
 * bottom, width x height x 4 bytes, size in X-Image-Width / X-Image-Height): UXP panels cannot decode PNG.
 */
async function getBlob(services: Services, principal: Principal, req: http.IncomingMessage, res: http.ServerResponse, sha256: string, format: string | null): Promise<void> {
  if (format !== null && format !== 'rgba' && format !== 'png') {
    throw new HttpError(400, `format must be 'rgba' (raw RGBA bytes) or 'png', got '${format.slice(0, 40)}'`);
  }
  const rgba = format === 'rgba';
  if (!SHA256_PATTERN.test(sha256)) {
    throw new HttpError(400, `'${sha256.slice(0, 80)}' is not a blob id: expected a SHA-256 digest (64 lowercase hex characters, as returned by PUT /v1/blobs)`);
  }
  // another workspace's blob answers as an unknown hash: the same lookup first, the same 404
  const bytes = (await visibleBlob(services, principal, sha256)) ? await services.store.blobs.get(sha256) : null;
  if (!bytes) throw new HttpError(404, `no blob ${sha256} on this server: upload it with PUT /v1/blobs, or use a result sha256 from jobs.get`);
  const contentType = sniffImageType(bytes);
  if (rgba && contentType === null) throw new HttpError(400, `blob ${sha256} is not an image, so it has no RGBA form: leave out ?format=rgba`);
  const headers = {
    // the RGBA form must never be confused with the stored bytes by a cache
    ETag: rgba ? `"${sha256}-rgba"` : `"${sha256}"`,
    'Cache-Control': 'public, max-age=31536000, immutable',
    'X-Content-Type-Options': 'nosniff',
  };
  if (etagMatches(req.headers['if-none-match'], rgba ? `${sha256}-rgba` : sha256)) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  if (rgba) {
    const image = await services.images.get(sha256);
    if (!image) throw new HttpError(404, `no blob ${sha256} on this server`);
    res.writeHead(200, {
      ...headers,
      'Content-Type': 'application/octet-stream',
      'Content-Length': image.data.byteLength,
      'X-Image-Width': image.width,
      'X-Image-Height': image.height,
    });
    res.end(req.method === 'HEAD' ? undefined : image.data);
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Type': contentType ?? 'application/octet-stream', 'Content-Length': bytes.byteLength });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

// ------------------------------------------------------------------------------------------------ handler

function noRoute(method: string, pathname: string): HttpError {
  return new HttpError(404, `no route ${method} ${pathname.slice(0, 200)}: the API is under /trpc, images under /v1/blobs`);
}

export function createRequestHandler(services: Services): http.RequestListener {
  const { log, config } = services;
  const requestIds = new WeakMap<http.IncomingMessage, string>();

  const trpc = createHTTPHandler({
    router: appRouter,
    basePath: '/trpc/',
    maxBodySize: MAX_TRPC_BODY_BYTES,
    maxBatchSize: MAX_TRPC_BATCH,
    createContext: async ({ req, info }): Promise<Context> => {
      const requestId = requestIds.get(req) ?? randomUUID();
      const presented = presentedToken(req, info.type === 'subscription' ? { connectionParams: info.connectionParams } : undefined);
      let auth: AuthResult;
      let authFailure: StoreError | null = null;
      try {
        auth = await services.auth.authenticate(presented);
      } catch (err) {
        // the store cannot answer who this is (its database is down): the procedure answers 503 with why
        if (!(err instanceof StoreError)) throw err;
        authFailure = err;
        auth = { ok: false, message: err.message };
      }
      const principal = auth.ok ? auth.principal : null;
      if (principal) noteUser(req, principal);
      const who = principal ? { userId: principal.user.id, workspaceId: principal.user.defaultWorkspaceId } : {};
      return {
        services,
        authorized: auth.ok,
        principal,
        authMode: auth.ok ? auth.mode : null,
        authMessage: auth.ok ? '' : auth.message,
        authFailure,
        recheck: async () => (await services.auth.authenticate(presented)).ok,
        clientAddress: req.socket.remoteAddress ?? 'unknown',
        requestId,
        log: log.child({ requestId, ...who }),
      };
    },
    responseMeta: ({ errors }) => {
      const causes = errors.map((e) => e.cause);
      const full = causes.find((c): c is QueueFullError | UserLimitError => c instanceof QueueFullError || c instanceof UserLimitError);
      if (full) return { headers: { 'Retry-After': String(full.retryAfterSeconds) } };
      const noRoom = causes.find((c) => (c instanceof StoreError && c.code === 'full') || c instanceof QuotaExceededError);
      return noRoom ? { status: 507 } : {};
    },
  });

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw new HttpError(400, 'the request URL is malformed');
    }
    const pathname = url.pathname;

    if (method === 'OPTIONS') {
      res.writeHead(204, { 'Content-Length': '0' });
      res.end();
      return;
    }
    if (pathname === '/trpc' || pathname.startsWith('/trpc/')) {
      if (method !== 'GET' && method !== 'POST' && method !== 'HEAD') {
        throw new HttpError(405, `${method} ${pathname.slice(0, 200)} is not supported: queries are GET, mutations POST`, { Allow: 'GET, HEAD, POST, OPTIONS' });
      }
      if (method === 'POST' && !isJson(req.headers['content-type'])) {
        throw new HttpError(415, `tRPC calls take JSON: send the input with Content-Type: application/json (images go to PUT /v1/blobs)`);
      }
      trpc(req, res);
      return;
    }
    if (pathname === '/' || pathname === '/index.html') {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} ${pathname} is not supported: use GET`, { Allow: 'GET, HEAD, OPTIONS' });
      await sendPlaygroundPage(req, res);
      return;
    }
    const blobRoute = pathname === '/v1/blobs' || pathname === '/v1/blobs/' ? 'collection' : pathname.startsWith('/v1/blobs/') ? 'item' : null;
    if (blobRoute) {
      const principal = await requireUser(services, req);
      if (blobRoute === 'collection') {
        if (method !== 'PUT' && method !== 'POST') throw new HttpError(405, `${method} /v1/blobs is not supported: PUT the image bytes`, { Allow: 'PUT, POST, OPTIONS' });
        await putBlob(services, principal, req, res, url);
        return;
      }
      if (method !== 'GET' && method !== 'HEAD') {
        throw new HttpError(405, `${method} ${pathname} is not supported: GET a blob, or PUT new bytes to /v1/blobs`, { Allow: 'GET, HEAD, OPTIONS' });
      }
      await getBlob(services, principal, req, res, decodeURIComponentSafe(pathname.slice('/v1/blobs/'.length)), url.searchParams.get('format'));
      return;
    }
    if (pathname === '/metrics') {
      const principal = await requireUser(services, req);
      // the server's figures are the operators': anyone else gets the answer of a route that does not exist
      if (principal.user.role !== 'admin') throw noRoute(method, pathname);
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} /metrics is not supported: use GET`, { Allow: 'GET, HEAD, OPTIONS' });
      const text = services.metrics.registry.expose();
      res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
      res.end(method === 'HEAD' ? undefined : text);
      return;
    }
    throw noRoute(method, pathname);
  };

  return (req, res) => {
    const requestId = randomUUID();
    requestIds.set(req, requestId);
    res.setHeader('X-Request-Id', requestId);
    observeRequest(services, req, res, requestId);
    req.on('error', () => {}); // a reset connection must never surface as an unhandled 'error'
    res.on('error', () => {});
    res.setHeader('Vary', 'Origin');
    const access = browserAccess(config, req);
    if (!access.allowed) return sendError(res, 403, access.message);
    if (access.corsOrigin !== null) setCorsHeaders(req, res, access.corsOrigin);
    route(req, res).catch((err: unknown) => {
      if (err instanceof ClientGoneError) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) return sendError(res, err.status, err.message, err.headers);
      if (err instanceof UploadError) return sendError(res, err.status, err.message);
      if (err instanceof UserLimitError) return sendError(res, 429, err.message, { 'Retry-After': String(err.retryAfterSeconds) });
      if (err instanceof QuotaExceededError) return sendError(res, 507, err.message);
      if (err instanceof StoreError && err.code !== 'not_found' && err.code !== 'illegal_transition') {
        // the message is for the client; the cause (errno text, paths) for the log
        if (err.code !== 'invalid_input') log.warn('request failed: storage', { requestId, path: (req.url ?? '').split('?')[0].slice(0, 200), error: err.message, cause: (err.cause as Error | undefined)?.message ?? null });
        return sendError(res, storeErrorStatus(err), err.message);
      }
      // the path only: a query string may carry a subscription's token (connectionParams)
      log.error('request failed', { requestId, method: req.method ?? null, path: (req.url ?? '').split('?')[0].slice(0, 200), error: (err as Error)?.message ?? String(err), stack: (err as Error)?.stack ?? null });
      sendError(res, 500, `internal error (request ${requestId}): the server logged the details`);
    });
  };
}

function isJson(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0].trim().toLowerCase() === 'application/json';
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A slow client may take this long to send its headers ... */
export const HEADERS_TIMEOUT_MS = 15_000;
/** ... and this long for the whole request (a 64 MiB upload at 1 MB/s fits); streams' responses are not limited. */
export const REQUEST_TIMEOUT_MS = 120_000;
/** Open connections at once (event streams included); node closes any more as soon as they connect. */
export const MAX_CONNECTIONS = 512;

/** The HTTP server for a request handler, plus a JSON 400 for requests too malformed to reach it. */
export function createHttpServer(handler: http.RequestListener): http.Server {
  const server = http.createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, handler);
  server.maxConnections = MAX_CONNECTIONS;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const tooSlow = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const status = tooLarge ? '431 Request Header Fields Too Large' : tooSlow ? '408 Request Timeout' : '400 Bad Request';
    const message = tooLarge
      ? 'the request headers are too large: send fewer or shorter headers'
      : tooSlow
        ? `the request took too long to arrive: send the headers within ${HEADERS_TIMEOUT_MS / 1000} s and the whole request within ${REQUEST_TIMEOUT_MS / 1000} s`
        : `malformed HTTP request (${err.code ?? 'parse error'}): send a valid HTTP/1.1 request`;
    const body = JSON.stringify({ error: message });
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  return server;
}
