/**
 * The engine worker: owns the ONNX sessions and runs one edit at a time, posting progress, previews and
 * results back. Built to dist/engine-worker.js.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadModel } from './families';
import { localEngine } from './local';
import type { FromWorker, ToWorker, WorkerInit } from './protocol';
import { EditCancelledError } from './sample';

const port = parentPort;
if (!port) throw new Error('engine worker must run in a worker_thread');
const init = workerData as WorkerInit;
const post = (msg: FromWorker) => port.postMessage(msg);
const running = new Map<string, AbortController>();
let queue: Promise<void> = Promise.resolve();

async function main(): Promise<void> {
  const timer = { onnxMs: 0, calls: 0 };
  const model = await loadModel(init.modelDir, { device: init.device, timer, threads: init.threads, log: (message) => post({ type: 'log', message }) });
  const engine = localEngine(model, timer);
  post({ type: 'ready', info: model.info });

  port!.on('message', (msg: ToWorker) => {
    if (msg.type === 'cancel') {
      running.get(msg.id)?.abort();
      return;
    }
    if (msg.type === 'shutdown') {
      void queue.then(() => model.release()).then(() => process.exit(0));
      return;
    }
    const controller = new AbortController();
    running.set(msg.id, controller);
    // edits run strictly one after another on this device
    queue = queue.then(async () => {
      if (controller.signal.aborted) {
        post({ type: 'error', id: msg.id, message: 'edit cancelled', cancelled: true });
        running.delete(msg.id);
        return;
      }
      try {
        const { result, timings } = await engine.edit(msg.input, {
          signal: controller.signal,
          onProgress: (progress) => post({ type: 'progress', id: msg.id, progress }),
        });
        post({ type: 'result', id: msg.id, result, timings });
      } catch (err) {
        post({ type: 'error', id: msg.id, message: (err as Error).message, cancelled: err instanceof EditCancelledError });
      } finally {
        running.delete(msg.id);
      }
    });
  });
}

main().catch((err) => {
  post({ type: 'error', id: null, message: (err as Error).message, cancelled: false });
  process.exit(1);
});
