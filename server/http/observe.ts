/**
 * Request observation for the HTTP front: when a response ends (or the client goes away), one log line
 * `{requestId, method, path, route, status, ms, userId?, workspaceId?}` and one count in
 * layerloop_http_requests_total (and in layerloop_workspace_requests_total for a signed-in user).
 *
 * `path` is the URL path only: a query string may carry a subscription's token (connectionParams).
 * `route` is a bounded template for the metric's label (`/trpc/jobs.get`, `/v1/blobs/:sha256`, ...), so a
 * client requesting random URLs cannot grow the metrics without bound.
 */
import type * as http from 'node:http';
import { appRouter } from '../api/router';
import type { Services } from '../api/trpc';
import type { Principal } from '../store';

/** The user each request acted as, for its log line (set once authenticated). */
const users = new WeakMap<http.IncomingMessage, Principal>();

/** Call when a request is authenticated: its log line carries userId and workspaceId, and its workspace counts it. */
export function noteUser(req: http.IncomingMessage, principal: Principal): void {
  users.set(req, principal);
}

const PROCEDURES: ReadonlySet<string> = new Set(Object.keys(appRouter._def.procedures));
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
/** the status logged for a request whose client went away before an answer started (nginx's convention) */
export const CLIENT_CLOSED_STATUS = 499;

function pathOf(url: string | undefined): string {
  const raw = (url ?? '/').split('?')[0];
  return raw.length > 200 ? `${raw.slice(0, 200)}...` : raw;
}

/** The route template a path belongs to: a known procedure, a blob route, a page, or 'other'. */
export function routeOf(path: string): string {
  if (path === '/trpc' || path.startsWith('/trpc/')) {
    const name = path.slice('/trpc/'.length);
    return PROCEDURES.has(name) ? `/trpc/${name}` : '/trpc/other';
  }
  if (path === '/v1/blobs' || path === '/v1/blobs/') return '/v1/blobs';
  if (path.startsWith('/v1/blobs/')) return '/v1/blobs/:sha256';
  if (path === '/metrics') return '/metrics';
  if (path === '/' || path === '/index.html') return '/';
  return 'other';
}

/** Call once per request, first thing: logs and counts it when its response closes. */
export function observeRequest(services: Pick<Services, 'log' | 'metrics'>, req: http.IncomingMessage, res: http.ServerResponse, requestId: string): void {
  const started = performance.now();
  res.once('close', () => {
    const ms = Math.round((performance.now() - started) * 10) / 10;
    const method = req.method ?? 'GET';
    const path = pathOf(req.url);
    const route = routeOf(path);
    const aborted = !res.writableFinished;
    const status = aborted && !res.headersSent ? CLIENT_CLOSED_STATUS : res.statusCode;
    services.metrics.httpRequests.inc({ route, method: METHODS.has(method) ? method : 'OTHER', status });
    if (status >= 500) services.metrics.errors.inc({ source: 'http' });
    const principal = users.get(req);
    const who = principal ? { userId: principal.user.id, workspaceId: principal.user.defaultWorkspaceId } : {};
    if (principal) services.metrics.countRequest(principal.user.defaultWorkspaceId);
    services.log.info('request', { requestId, method, path, route, status, ms, ...who, ...(aborted ? { aborted: true } : {}) });
  });
}
