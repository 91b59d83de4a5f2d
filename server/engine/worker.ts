/**
 * The engine worker: owns the ONNX sessions and runs up to `batch` edits at once (one without batching),
 * posting progress, previews and results back; further edits wait their turn in arrival order. Edits running
 * together share the UNet's runs step by step (batching.ts). Built to dist/engine-worker.js.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadModel } from './families';
import { localEngine } from './local';
import type { EngineInput } from './pipeline';
import type { FromWorker, ToWorker, WorkerInit } from './protocol';
import { EditCancelledError } from './sample';

const port = parentPort;
if (!port) throw new Error('engine worker must run in a worker_thread');
const init = workerData as WorkerInit;
const post = (msg: FromWorker) => port.postMessage(msg);
const slots = Math.max(1, init.batch ?? 1);
/** edits received and not yet finished (waiting or running) */
const running = new Map<string, AbortController>();
const waiting: { id: string; input: EngineInput }[] = [];
let active = 0;
let idle: (() => void) | null = null;

async function main(): Promise<void> {
  const timer = { onnxMs: 0, calls: 0 };
  const model = await loadModel(init.modelDir, { device: init.device, timer, threads: init.threads, batch: slots, log: (message) => post({ type: 'log', message }) });
  const engine = localEngine(model, timer);
  post({ type: 'ready', info: model.info });

  const runEdit = async (id: string, input: EngineInput): Promise<void> => {
    const controller = running.get(id)!;
    try {
      if (controller.signal.aborted) throw new EditCancelledError();
      const { result, timings } = await engine.edit(input, {
        signal: controller.signal,
        onProgress: (progress) => post({ type: 'progress', id, progress }),
      });
      post({ type: 'result', id, result, timings });
    } catch (err) {
      post({ type: 'error', id, message: (err as Error).message, cancelled: err instanceof EditCancelledError });
    } finally {
      running.delete(id);
      active--;
      startWaiting();
    }
  };
  const startWaiting = (): void => {
    while (active < slots && waiting.length > 0) {
      const next = waiting.shift()!;
      active++;
      void runEdit(next.id, next.input);
    }
    if (active === 0 && idle) idle();
  };

  port!.on('message', (msg: ToWorker) => {
    if (msg.type === 'cancel') {
      running.get(msg.id)?.abort();
      return;
    }
    if (msg.type === 'shutdown') {
      const drained = active === 0 && waiting.length === 0 ? Promise.resolve() : new Promise<void>((resolve) => (idle = resolve));
      void drained.then(() => model.release()).then(() => process.exit(0));
      return;
    }
    running.set(msg.id, new AbortController());
    waiting.push({ id: msg.id, input: msg.input });
    startWaiting();
  });
}

main().catch((err) => {
  post({ type: 'error', id: null, message: (err as Error).message, cancelled: false });
  process.exit(1);
});
