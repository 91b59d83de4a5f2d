/**
 * The playground's connection to the server it was loaded from: the typed tRPC client (httpLink for queries
 * and mutations, httpSubscriptionLink over the browser's EventSource for jobs.watch) and the blob routes.
 *
 * The token is read on every request, so saving a new one in the settings takes effect at once. EventSource
 * cannot send headers: subscriptions pass it as the `token` connection param instead.
 */
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client';
import type { inferRouterOutputs } from '@trpc/server';
import type { AppRouter } from '../api/router';

export type Outputs = inferRouterOutputs<AppRouter>;
export type HistoryNode = Outputs['documents']['history']['nodes'][number];
export type Health = Outputs['health'];

export interface UploadedBlob {
  sha256: string;
  width: number;
  height: number;
}

export function createApi(origin: string, token: () => string | null) {
  const authHeaders = (): Record<string, string> => {
    const t = token();
    return t ? { Authorization: `Bearer ${t}` } : {};
  };
  const url = `${origin}/trpc`;
  const trpc = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({
          url,
          connectionParams: () => {
            const t = token();
            return t ? { token: t } : null;
          },
        }),
        false: httpLink({ url, headers: authHeaders }),
      }),
    ],
  });

  /** PUT /v1/blobs: the bytes as sent (PNG, JPEG or WebP); the server answers with their canonical id and size. */
  async function upload(body: Blob, contentType: string): Promise<UploadedBlob> {
    const res = await request(`${origin}/v1/blobs`, { method: 'PUT', headers: { 'Content-Type': contentType, ...authHeaders() }, body });
    return (await res.json()) as UploadedBlob;
  }

  const objectUrls = new Map<string, Promise<string>>();

  /**
   * An object URL for a stored image (GET /v1/blobs/:sha), fetched once per page: an <img src> cannot send
   * the Authorization header a server with a token requires. Blobs are immutable, so the URL never goes stale.
   */
  function imageUrl(sha256: string): Promise<string> {
    let url = objectUrls.get(sha256);
    if (!url) {
      url = request(`${origin}/v1/blobs/${sha256}`, { headers: authHeaders() }).then(async (res) => URL.createObjectURL(await res.blob()));
      url.catch(() => objectUrls.delete(sha256)); // try again next time
      objectUrls.set(sha256, url);
    }
    return url;
  }

  return { trpc, upload, imageUrl };
}

export type Api = ReturnType<typeof createApi>;

/** fetch, with the server's `{error}` message (or the network failure, said plainly) as the thrown Error's message. */
async function request(url: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new Error(`cannot reach the server (${(err as Error).message}): is it still running?`);
  }
  if (res.ok) return res;
  let message = `HTTP ${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: unknown };
    if (typeof body.error === 'string') message = body.error;
  } catch {
    // not JSON: keep the status line
  }
  throw new Error(message);
}

/** What to show the user for a failed call: the server's message for API errors, the cause otherwise. */
export function errorMessage(err: unknown): string {
  if (err instanceof TRPCClientError) {
    // a fetch that never reached the server surfaces as a TRPCClientError wrapping a TypeError
    if (err.cause instanceof TypeError && !err.data) return `cannot reach the server (${err.message}): is it still running?`;
    return err.message;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}
