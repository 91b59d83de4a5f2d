/**
 * The playground's connection to the server it was loaded from: the shared client (shared/client/, the one the
 * plugins use: jobs followed over SSE read from a fetch stream, polling when that fails) and object URLs for
 * stored images.
 *
 * The token is read on every call, so saving a new one in the settings takes effect at once (a client is made
 * per token).
 */
import { ClientError, createClient, type FetchLike, type HistoryEntry, type LayerloopClient, type ServerHealth } from '../../shared/client';

export type HistoryNode = HistoryEntry;
export type Health = ServerHealth;

/** The browser's fetch as the shared client calls it. */
const browserFetch: FetchLike = (url, init) => fetch(url, { method: init.method, headers: init.headers, body: init.body as BodyInit | undefined, signal: init.signal as AbortSignal | undefined });

export function createApi(origin: string, token: () => string | null) {
  let current: { token: string; client: LayerloopClient } | null = null;
  /** the client for the token now in the settings */
  function client(): LayerloopClient {
    const t = token() ?? '';
    if (current?.token !== t) current = { token: t, client: createClient({ serverUrl: origin, token: t, fetch: browserFetch, transport: 'sse', networkHint: 'is it still running?' }) };
    return current.client;
  }

  /** PUT /v1/blobs: the bytes as sent (PNG, JPEG or WebP); the server answers with their canonical id and size. */
  async function upload(body: Blob, contentType: 'image/png' | 'image/jpeg' | 'image/webp') {
    return client().putImage(new Uint8Array(await body.arrayBuffer()), { contentType });
  }

  const objectUrls = new Map<string, Promise<string>>();

  /**
   * An object URL for a stored image (GET /v1/blobs/:sha), fetched once per page: an <img src> cannot send
   * the Authorization header a server with a token requires. Blobs are immutable, so the URL never goes stale.
   */
  function imageUrl(sha256: string): Promise<string> {
    let url = objectUrls.get(sha256);
    if (!url) {
      url = client()
        .getBlob(sha256)
        .then((bytes) => URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>])));
      url.catch(() => objectUrls.delete(sha256)); // try again next time
      objectUrls.set(sha256, url);
    }
    return url;
  }

  return { client, upload, imageUrl };
}

export type Api = ReturnType<typeof createApi>;

/** What to show the user for a failed call: the client's message (it says what to do), the cause otherwise. */
export function errorMessage(err: unknown): string {
  if (err instanceof ClientError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
