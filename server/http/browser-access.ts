/**
 * Which web pages may use the server from a browser, decided once per request before anything runs.
 *
 * - No `Origin` header: not a cross-origin browser request (curl, Node clients, the Photoshop panel, whose UXP
 *   runtime does no CORS, a page reading its own server): allowed.
 * - Allowed origins: `null` (Figma's plugin UI, an iframe loaded from a data: URL), the server's own origin (the
 *   playground at `/`), and the origins the operator lists with `--allow-origin`. They get CORS headers (the
 *   origin echoed back) and, for Chrome's Private Network Access preflight, `Allow-Private-Network`.
 * - Any other origin: 403, so a web page the user happens to visit cannot upload, edit, fill the disk or read
 *   blobs. A browser without CORS headers would still *send* a simple request (a form POST); refusing it here,
 *   before routing, is what stops the side effects.
 * - Without a token (the server then listens on loopback only), the `Host` header must name a loopback address
 *   too: a page whose own host name resolves to 127.0.0.1 (DNS rebinding) is same-origin with the server, and a
 *   same-origin GET carries no `Origin` to refuse.
 */
import type * as http from 'node:http';
import type { Config } from '../config';
import { isLoopbackHost } from '../config';

/** The Origin of Figma's plugin iframe (and of any sandboxed or data: URL page: a token closes that gap). */
export const FIGMA_IFRAME_ORIGIN = 'null';

export type BrowserAccess = { allowed: true; corsOrigin: string | null } | { allowed: false; message: string };

function hostnameOf(host: string): string | null {
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return null;
  }
}

export function browserAccess(config: Pick<Config, 'token' | 'allowOrigins'>, req: http.IncomingMessage): BrowserAccess {
  const host = req.headers.host;
  if (config.token === null && host !== undefined) {
    const name = hostnameOf(host);
    if (name === null || !isLoopbackHost(name)) {
      return {
        allowed: false,
        message:
          `this server answers only requests addressed to this machine (localhost, 127.0.0.1, [::1]), not to ${JSON.stringify(host.slice(0, 100))}: ` +
          `open it as http://127.0.0.1:PORT, or start it with a token (--token) to serve other names`,
      };
    }
  }
  const origin = req.headers.origin;
  if (origin === undefined) return { allowed: true, corsOrigin: null };
  const own = host !== undefined && origin === `http://${host}`;
  if (own || origin === FIGMA_IFRAME_ORIGIN || config.allowOrigins.includes(origin)) return { allowed: true, corsOrigin: origin };
  return {
    allowed: false,
    message:
      `requests from web pages at ${JSON.stringify(origin.slice(0, 200))} are not allowed: only the server's own pages, the Figma and Photoshop ` +
      `plugins and the origins listed with --allow-origin may call it. To allow this page, restart the server with --allow-origin ${origin.slice(0, 200)}`,
  };
}

/** CORS headers for an allowed origin. No cookies are used (auth is a header), so credentials are never allowed. */
export function setCorsHeaders(req: http.IncomingMessage, res: http.ServerResponse, origin: string): void {
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Last-Event-ID, trpc-accept, X-Request-Id');
  res.setHeader('Access-Control-Expose-Headers', 'ETag, Retry-After, X-Request-Id, X-Image-Width, X-Image-Height');
  res.setHeader('Access-Control-Max-Age', '600');
  // Chrome's Private Network Access: a page on the internet (figma.com) asking a server on this machine
  if (req.headers['access-control-request-private-network'] === 'true') res.setHeader('Access-Control-Allow-Private-Network', 'true');
}
