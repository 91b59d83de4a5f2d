/**
 * Main-thread handle on the engine worker: start it on a model folder, run edits (with progress and
 * cancellation), close it. The event loop stays free while the worker computes.
 */
import { randomUUID } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { builtBundle } from '../bundles';
import type { ModelInfo } from './family';
import type { TensorEngine } from './local';
import type { Log } from './ort';
import type { EngineHooks, EngineInput, EngineResult, Progress } from './pipeline';
import type { EngineTimings, FromWorker, ToWorker, WorkerInit } from './protocol';
import { EditCancelledError } from './sample';

/** The built worker bundle: dist/engine-worker.js. */
export function defaultWorkerFile(): string {
  return builtBundle('engine-worker.js');
}

interface Pending {
  resolve: (v: { result: EngineResult; timings: EngineTimings }) => void;
  reject: (e: Error) => void;
  onProgress?: (p: Progress) => void;
  /** drops the abort listener once the edit settles */
  dispose?: () => void;
}

export class Engine implements TensorEngine {
  private readonly pending = new Map<string, Pending>();
  private failure: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly info: ModelInfo,
    private readonly log: Log,
  ) {
    worker.on('message', (msg: FromWorker) => this.handle(msg));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`engine worker exited (code ${code})`)));
  }

  static start(init: WorkerInit & { workerFile?: string; log?: Log }): Promise<Engine> {
    const log = init.log ?? ((m: string) => process.stderr.write(m + '\n'));
    const worker = new Worker(init.workerFile ?? defaultWorkerFile(), {
      workerData: { modelDir: init.modelDir, device: init.device, threads: init.threads, batch: init.batch } satisfies WorkerInit,
    });
    return new Promise((resolve, reject) => {
      const onMessage = (msg: FromWorker) => {
        if (msg.type === 'log') log(msg.message);
        else if (msg.type === 'ready') {
          worker.off('message', onMessage);
          worker.off('exit', onExit);
          resolve(new Engine(worker, msg.info, log));
        } else if (msg.type === 'error') reject(new Error(msg.message));
      };
      const onExit = (code: number) => reject(new Error(`engine worker exited during start (code ${code})`));
      worker.on('message', onMessage);
      worker.on('exit', onExit);
      worker.once('error', reject);
    });
  }

  /** Run one edit in the worker. Rejects with EditCancelledError when `signal` aborts. */
  edit(input: EngineInput, hooks: EngineHooks = {}): Promise<{ result: EngineResult; timings: EngineTimings }> {
    if (this.failure) return Promise.reject(this.failure);
    if (hooks.noise) return Promise.reject(new Error('injected noise cannot cross into the engine worker: run the edit in-process (localEngine)'));
    if (hooks.signal?.aborted) return Promise.reject(new EditCancelledError());
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const job: Pending = { resolve, reject, onProgress: hooks.onProgress };
      const signal = hooks.signal;
      if (signal) {
        const cancel = () => this.send({ type: 'cancel', id });
        signal.addEventListener('abort', cancel, { once: true });
        job.dispose = () => signal.removeEventListener('abort', cancel);
      }
      this.pending.set(id, job);
      this.send({ type: 'edit', id, input });
    });
  }

  async close(): Promise<void> {
    if (this.failure) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.send({ type: 'shutdown' });
    await exited;
  }

  private send(msg: ToWorker): void {
    this.worker.postMessage(msg);
  }

  private handle(msg: FromWorker): void {
    if (msg.type === 'log') return this.log(msg.message);
    if (msg.type === 'ready') return;
    const job = msg.id ? this.pending.get(msg.id) : undefined;
    if (msg.type === 'progress') return job?.onProgress?.(msg.progress);
    if (!job || !msg.id) return;
    this.pending.delete(msg.id);
    job.dispose?.();
    if (msg.type === 'result') job.resolve({ result: msg.result, timings: msg.timings });
    else job.reject(msg.cancelled ? new EditCancelledError() : new Error(msg.message));
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const job of this.pending.values()) {
      job.dispose?.();
      job.reject(err);
    }
    this.pending.clear();
  }
}
