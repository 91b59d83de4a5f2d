/**
 * What the team-server roles need besides the queue (main.ts wires them):
 * - the model a `serve` node reports and plans with: the one its workers loaded, published in Redis by each
 *   worker at start (an API node loads no model);
 * - a worker's own HTTP answers on --port: GET /health (and /ready: 200 once it pulls jobs) and GET /metrics.
 */
import type * as http from 'node:http';
import { TRPCError } from '@trpc/server';
import type { Redis } from 'ioredis';
import type { ModelInfo } from './engine/family';
import { METRICS_CONTENT_TYPE, type ServerMetrics } from './metrics';

const modelKey = (prefix: string) => `${prefix}:model`;

/** A worker tells the API nodes which model it runs (they plan edits with its default sampler, and report it). */
export async function publishModelInfo(redis: Redis, prefix: string, info: ModelInfo): Promise<void> {
  await redis.set(modelKey(prefix), JSON.stringify(info));
}

/**
 * The model of the workers, for a `serve` node: read at start and every `refreshMs`. Until a worker has
 * published one, `info` throws a 503 that says to start a worker.
 */
export class WorkersModel {
  private current: ModelInfo | null = null;
  private readonly timer: ReturnType<typeof setInterval>;

  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    refreshMs: number,
  ) {
    this.timer = setInterval(() => void this.refresh(), refreshMs);
    this.timer.unref();
  }

  static async open(redis: Redis, prefix: string, refreshMs = 2000): Promise<WorkersModel> {
    const model = new WorkersModel(redis, prefix, refreshMs);
    await model.refresh();
    return model;
  }

  get info(): ModelInfo {
    if (this.current) return this.current;
    throw new TRPCError({
      code: 'SERVICE_UNAVAILABLE',
      message: 'no worker has started on this queue yet: start one (layerloop worker with the same --queue and --store), then try again',
    });
  }

  get known(): boolean {
    return this.current !== null;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    const text = await this.redis.get(modelKey(this.prefix)).catch(() => null);
    if (text) this.current = JSON.parse(text) as ModelInfo;
  }
}

export interface WorkerStatus {
  role: 'worker';
  status: 'starting' | 'ok' | 'shutting-down';
  version: string;
  model: { name: string; provider: string; precision: string; nativeSize: number } | null;
  activeJobs: number;
  uptimeSeconds: number;
}

/** A worker's HTTP answers: /health (always 200 with the status), /ready (200 only while it pulls jobs), /metrics. */
export function workerRequestHandler(deps: {
  /** whether the request may read the metrics (an admin, as on the API nodes) */
  mayReadMetrics: (req: http.IncomingMessage) => Promise<boolean>;
  metrics: ServerMetrics;
  status: () => WorkerStatus;
}): http.RequestListener {
  return async (req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://worker').pathname;
    const send = (code: number, body: string, type: string) => {
      res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
      res.end(body);
    };
    const json = (code: number, body: unknown) => send(code, JSON.stringify(body), 'application/json; charset=utf-8');
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: `${req.method} is not supported here: a worker answers GET /health, /ready and /metrics` });
    if (pathname === '/health' || pathname === '/ready') {
      const status = deps.status();
      return json(pathname === '/ready' && status.status !== 'ok' ? 503 : 200, status);
    }
    if (pathname === '/metrics') {
      if (!(await deps.mayReadMetrics(req).catch(() => false))) return json(401, { error: "send 'Authorization: Bearer <token>': an admin's personal token, or the workers' --token" });
      return send(200, deps.metrics.registry.expose(), METRICS_CONTENT_TYPE);
    }
    return json(404, { error: `a worker serves no ${pathname}: the API is on the serve nodes; here: GET /health, /ready, /metrics` });
  };
}
