/**
 * The real LayerloopApi (browser only: the UI iframe): tRPC over HTTP typed by the server's AppRouter
 * (type import only, no server code is bundled), jobs.watch over SSE, and fetch for the two blob routes.
 *
 * Auth: `Authorization: Bearer <token>` on every request; EventSource cannot send headers, so the SSE
 * subscription passes the token as the `token` connection param (the server accepts either).
 * If SSE fails (a proxy that buffers, a server that forgot the job's events), the job is followed by
 * polling jobs.get every 500 ms, which yields the same events.
 */
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink, TRPCClientError } from '@trpc/client';
import type { AppRouter } from '../../server/api/router';
import { isTerminalJobEvent, jobEventSchema, jobSnapshotSchema, type JobEvent, type JobSnapshot } from '../../shared/protocol';
import { ApiError, errorForStatus, snapshotToEvents, type BlobInfo, type HistoryEntry, type LayerloopApi, type ServerHealth } from './api';

export interface HttpApiOptions {
  serverUrl: string;
  token: string;
  pollMs?: number;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ApiError('aborted', 'cancelled'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ApiError('aborted', 'cancelled'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A tracked SSE item ({id, data}) or a bare event, as one validated JobEvent. */
function toJobEvent(value: unknown): JobEvent {
  const data = value && typeof value === 'object' && 'data' in value && 'id' in value ? (value as { data: unknown }).data : value;
  return jobEventSchema.parse(data);
}

export function createHttpApi(options: HttpApiOptions): LayerloopApi {
  const serverUrl = options.serverUrl.replace(/\/+$/, '');
  const token = options.token.trim();
  const pollMs = options.pollMs ?? 500;
  const authHeaders = (): Record<string, string> => (token ? { Authorization: `Bearer ${token}` } : {});

  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url: `${serverUrl}/trpc`, connectionParams: token ? { token } : null }),
        false: httpLink({ url: `${serverUrl}/trpc`, headers: authHeaders }),
      }),
    ],
  });

  function toApiError(err: unknown): ApiError {
    if (err instanceof ApiError) return err;
    if (err instanceof Error && err.name === 'AbortError') return new ApiError('aborted', 'cancelled');
    if (err instanceof TRPCClientError) {
      const data = err.data as { httpStatus?: number } | undefined;
      const response = (err.meta as { response?: { status?: number } } | undefined)?.response;
      const status = data?.httpStatus ?? response?.status ?? null;
      if (err.cause instanceof Error && err.cause.name === 'AbortError') return new ApiError('aborted', 'cancelled');
      return errorForStatus(serverUrl, status, status === null ? null : err.message);
    }
    return errorForStatus(serverUrl, null, null);
  }

  async function call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toApiError(err);
    }
  }

  async function blobRequest(path: string, init: RequestInit): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`${serverUrl}${path}`, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string>) } });
    } catch (err) {
      throw toApiError(err);
    }
    if (!response.ok) {
      let said: string | null = null;
      try {
        const body = (await response.json()) as { error?: unknown };
        if (typeof body.error === 'string') said = body.error;
      } catch {
        // not JSON
      }
      throw errorForStatus(serverUrl, response.status, said);
    }
    return response;
  }

  /** The job's events over SSE until the terminal one; throws on any trouble with the stream. */
  async function* sseEvents(jobId: string, signal: AbortSignal): AsyncGenerator<JobEvent> {
    const pending: JobEvent[] = [];
    let failure: unknown = null;
    let finished = false;
    let wake = () => {};
    const subscription = client.jobs.watch.subscribe(
      { jobId },
      {
        onData: (value: unknown) => {
          try {
            pending.push(toJobEvent(value));
          } catch (err) {
            failure = err;
          }
          wake();
        },
        onError: (err: unknown) => {
          failure = err ?? new Error('the event stream failed');
          wake();
        },
        onComplete: () => {
          finished = true;
          wake();
        },
        onConnectionStateChange: (state: { state: string; error?: unknown }) => {
          // EventSource would retry forever against a dead server: let polling decide instead
          if (state.state === 'connecting' && state.error) {
            failure = state.error;
            wake();
          }
        },
      },
    );
    const onAbort = () => wake();
    signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        const next = pending.shift();
        if (next) {
          yield next;
          continue;
        }
        if (signal.aborted) throw new ApiError('aborted', 'cancelled');
        if (failure !== null) throw failure;
        if (finished) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      subscription.unsubscribe();
    }
  }

  /** The job's events by polling jobs.get; network hiccups are retried a few times. */
  async function* pollEvents(jobId: string, signal: AbortSignal): AsyncGenerator<JobEvent> {
    let prev: JobSnapshot | null = null;
    let failures = 0;
    for (;;) {
      let snapshot: JobSnapshot;
      try {
        const previewAfterStep: number | undefined = prev?.previewStep ?? undefined;
        snapshot = jobSnapshotSchema.parse(await client.jobs.get.query({ jobId, previewAfterStep }, { signal }));
        failures = 0;
      } catch (err) {
        const error = toApiError(err);
        if (error.kind !== 'network' || ++failures >= 5) throw error;
        await sleep(pollMs * 2 ** failures, signal);
        continue;
      }
      for (const event of snapshotToEvents(prev, snapshot)) {
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

    async health(): Promise<ServerHealth> {
      const h = await call(() => client.health.query());
      return { model: `${h.model.name} on ${h.model.provider}`, version: h.version, authRequired: h.authRequired };
    },

    async openDocument(hostDocumentKey: string): Promise<string> {
      const opened = await call(() => client.documents.open.mutate({ host: 'figma', hostDocumentKey }));
      return opened.documentId;
    },

    async history(documentId: string): Promise<HistoryEntry[]> {
      const history = await call(() => client.documents.history.query({ documentId }));
      return history.nodes.map((n) => ({
        id: n.id,
        parentId: n.parentId,
        kind: n.kind,
        instruction: n.instruction,
        resultImageSha256: n.resultImageSha256,
        seed: n.seed,
        variation: n.variation,
        createdAt: n.createdAt,
      }));
    },

    createEdit: (request, signal) => call(() => client.edits.create.mutate(request, { signal })),

    async *watchJob(jobId: string, signal: AbortSignal): AsyncGenerator<JobEvent> {
      try {
        for await (const event of sseEvents(jobId, signal)) {
          yield event;
          if (isTerminalJobEvent(event)) return;
        }
      } catch {
        if (signal.aborted) throw new ApiError('aborted', 'cancelled');
      }
      // the stream failed or ended early: polling picks up from the job's current state
      yield* pollEvents(jobId, signal);
    },

    async cancelJob(jobId: string): Promise<void> {
      await call(() => client.jobs.cancel.mutate({ jobId }));
    },

    async putPng(png: Uint8Array, signal?: AbortSignal): Promise<BlobInfo> {
      const response = await blobRequest('/v1/blobs', {
        method: 'PUT',
        headers: { 'Content-Type': 'image/png' },
        body: new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }),
        signal,
      });
      const body = (await response.json()) as Partial<BlobInfo>;
      if (typeof body.sha256 !== 'string') throw new ApiError('server', 'The server answered the upload without a sha256: is it a layerloop server?');
      return { sha256: body.sha256, width: Number(body.width), height: Number(body.height) };
    },

    async getBlob(sha256: string, signal?: AbortSignal): Promise<Uint8Array> {
      const response = await blobRequest(`/v1/blobs/${sha256}`, { method: 'GET', signal });
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}
