/**
 * The one initTRPC of the server (STYLE rule 9): the request context, the error format, and the procedure
 * builders every router uses.
 *
 * - `publicProcedure`: no token needed (health only).
 * - `authedProcedure`: the request must resolve to a user (server/auth/authenticate.ts): a personal token, the
 *   shared token, or none on a token-less loopback server, as `Authorization: Bearer <token>` (subscriptions may
 *   pass it as the `token` connection param instead, because EventSource cannot set headers). `ctx.principal` is
 *   the user and its workspaces; what lies in other workspaces answers exactly as what does not exist (access.ts).
 *
 * Every procedure maps the errors of the layers below to tRPC codes with messages that say what to fix:
 * zod input errors -> BAD_REQUEST (formatIssues), StoreError -> 400/404/409, QueueFullError -> 429 (the
 * HTTP layer adds Retry-After), QueueClosedError -> 503, UnknownJobError -> 404.
 */
import { initTRPC, TRPCError } from '@trpc/server';
import type { z } from 'zod';
import { formatIssues } from '../../shared/protocol';
import type { AuthMode, Authenticator } from '../auth/authenticate';
import type { Config } from '../config';
import type { JobOwners } from '../jobs/owners';
import type { ModelInfo } from '../engine/family';
import type { Segmenter } from '../engine/segmenter';
import type { ImageBlobs } from '../imaging/image-blobs';
import type { ByteBudget } from '../http/upload-budget';
import type { AdmissionRoom } from '../jobs/admission';
import type { StreamSlots } from './stream-slots';
import { QueueClosedError, QueueFullError, UnknownJobError } from '../jobs/errors';
import type { JobQueue } from '../jobs/port';
import type { Logger } from '../log';
import type { ServerMetrics } from '../metrics';
import { StoreError, type Principal, type Store } from '../store';
import { QuotaExceededError, UserLimitError } from './limits';

/** Everything the procedures use, built once in main.ts (no globals). */
export interface Services {
  readonly config: Config;
  readonly store: Store;
  /** images in and out of store.blobs (canonical PNG, decoded-image cache) */
  readonly images: ImageBlobs;
  readonly queue: JobQueue;
  /** the fair waiting room in front of the queue (edits.create enters through it) */
  readonly admission: AdmissionRoom;
  /** bytes of uploads being read and stored at once (PUT /v1/blobs) */
  readonly uploads: ByteBudget;
  /** open jobs.watch streams, bounded per job and per client */
  readonly streams: StreamSlots;
  readonly engine: { readonly info: ModelInfo };
  /** turns a region's maskText into a mask (masks from words); runs on this thread */
  readonly segmenter: Pick<Segmenter, 'info' | 'region'>;
  /** package.json's version */
  readonly version: string;
  /** epoch ms */
  readonly startedAt: number;
  readonly log: Logger;
  readonly metrics: ServerMetrics;
  /** the store's integrity check at start-up */
  readonly integrity: { readonly problems: number; readonly checkedAt: number };
  readonly auth: Authenticator;
  /** who asked for each job this process runs (the per-user limit, the authors it records) */
  readonly owners: JobOwners;
  /** uploads in flight per user */
  readonly uploadsByUser: Map<string, number>;
  /** how often an open stream rereads its token (a revoked token or disabled user ends it) */
  readonly authRecheckMs: number;
}

export interface Context {
  services: Services;
  /** the request resolved to a user */
  authorized: boolean;
  /** who the request acts as (null when not authorized) */
  principal: Principal | null;
  authMode: AuthMode | null;
  /** why the request is not authorized: what the client reads */
  authMessage: string;
  /** the store failed while checking the token (answered as that failure, 503/507, not as a refusal) */
  authFailure: StoreError | null;
  /** checks the request's token again (an open stream calls it; false once revoked or its user disabled) */
  recheck: () => Promise<boolean>;
  /** the peer's address (per-client limits) */
  clientAddress: string;
  requestId: string;
  log: Logger;
}

export { UNAUTHORIZED_MESSAGE } from '../auth/authenticate';

function zodIssuesOf(cause: unknown): z.ZodError | null {
  if (cause && typeof cause === 'object' && (cause as { name?: unknown }).name === 'ZodError' && Array.isArray((cause as { issues?: unknown }).issues)) {
    return cause as z.ZodError;
  }
  return null;
}

/** tRPC inputs are small JSON; images go through PUT /v1/blobs. */
export const MAX_TRPC_BODY_BYTES = 1024 * 1024;
/**
 * Calls in one batch (`/trpc/a,b?batch=1`). The clients send one call per request; a big batch would run every
 * call before any other request is answered.
 */
export const MAX_TRPC_BATCH = 10;
/** tRPC's own message when a batch is over maxBatchSize (rephrased below to say what to do) */
const BATCH_TOO_LARGE = 'Batch call exceeds maximum size';

/** What the client reads: zod issues one per line, transport errors rephrased to say what to send. */
function clientMessage(error: TRPCError, fallback: string): string {
  const issues = error.code === 'BAD_REQUEST' ? zodIssuesOf(error.cause) : null;
  if (issues) return formatIssues(issues);
  if (error.code === 'PAYLOAD_TOO_LARGE') {
    return `the request body is larger than ${MAX_TRPC_BODY_BYTES / 1048576} MiB: API inputs are small JSON; upload images with PUT /v1/blobs and pass their sha256`;
  }
  if (error.code === 'BAD_REQUEST' && error.message === BATCH_TOO_LARGE) {
    return `a batch may hold at most ${MAX_TRPC_BATCH} calls: send fewer calls per request`;
  }
  if (error.code === 'BAD_REQUEST' && error.cause?.name === 'SyntaxError') {
    return `the input is not valid JSON (${error.cause.message}): send the procedure's input as JSON`;
  }
  return fallback;
}

const t = initTRPC.context<Context>().create({
  // no stack traces on the wire
  isDev: false,
  sse: {
    ping: { enabled: true, intervalMs: 15_000 },
    client: { reconnectAfterInactivityMs: 40_000 },
  },
  errorFormatter({ shape, error }) {
    return {
      message: clientMessage(error, shape.message),
      code: shape.code,
      data: { code: shape.data.code, httpStatus: error.cause instanceof QuotaExceededError ? 507 : shape.data.httpStatus, path: shape.data.path ?? null },
    };
  },
});

/** The error a lower layer threw, as a TRPCError with the right code; null to keep tRPC's own. */
function toTRPCError(error: TRPCError): TRPCError | null {
  const cause = error.cause;
  if (cause instanceof QueueFullError) return new TRPCError({ code: 'TOO_MANY_REQUESTS', message: cause.message, cause });
  if (cause instanceof UserLimitError) return new TRPCError({ code: 'TOO_MANY_REQUESTS', message: cause.message, cause });
  // answered 507 by the HTTP layer, as an upload over the quota is (tRPC has no such code)
  if (cause instanceof QuotaExceededError) return new TRPCError({ code: 'PRECONDITION_FAILED', message: cause.message, cause });
  if (cause instanceof QueueClosedError) return new TRPCError({ code: 'SERVICE_UNAVAILABLE', message: cause.message, cause });
  if (cause instanceof UnknownJobError) return new TRPCError({ code: 'NOT_FOUND', message: cause.message, cause });
  if (cause instanceof StoreError) {
    // 'full' is answered 507 by the HTTP layer (tRPC has no such code: see storeErrorStatus)
    const code = (
      {
        invalid_input: 'BAD_REQUEST',
        not_found: 'NOT_FOUND',
        illegal_transition: 'CONFLICT',
        corrupt: 'INTERNAL_SERVER_ERROR',
        full: 'SERVICE_UNAVAILABLE',
        unavailable: 'SERVICE_UNAVAILABLE',
      } as const
    )[cause.code];
    return new TRPCError({ code, message: cause.message, cause });
  }
  return null;
}

/** What the log keeps of an error's cause chain (errno text and paths included: the log is the operator's). */
function causeDetail(error: unknown): string | null {
  const inner = (error as { cause?: unknown } | undefined)?.cause;
  return inner instanceof Error ? inner.message : null;
}

/** The HTTP status for a StoreError outside tRPC's codes (507: nothing could be stored, the disk is full). */
export function storeErrorStatus(error: StoreError): number {
  return { invalid_input: 400, not_found: 404, illegal_transition: 409, corrupt: 500, full: 507, unavailable: 503 }[error.code];
}

const mapErrors = t.middleware(async ({ next, ctx, path }) => {
  const result = await next();
  if (result.ok) return result;
  const mapped = toTRPCError(result.error);
  const final = mapped ?? result.error;
  if (final.code === 'INTERNAL_SERVER_ERROR' || final.code === 'SERVICE_UNAVAILABLE') {
    ctx.log.error('procedure failed', { path, error: final.message, cause: causeDetail(final.cause), stack: final.cause?.stack ?? null });
  }
  if (mapped) throw mapped;
  return result;
});

const isAuthed = t.middleware(({ ctx, next }) => {
  if (ctx.authFailure) throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: ctx.authFailure.message, cause: ctx.authFailure });
  if (!ctx.authorized || ctx.principal === null) throw new TRPCError({ code: 'UNAUTHORIZED', message: ctx.authMessage });
  return next({ ctx: { ...ctx, principal: ctx.principal } });
});

export const router = t.router;
export const publicProcedure = t.procedure.use(mapErrors);
export const authedProcedure = publicProcedure.use(isAuthed);
