/**
 * Messages between the main thread and the engine worker. onnxruntime-node's session.run blocks its thread
 * for the whole inference (engine.md 0.8), so the model lives in a worker_thread and talks only through these.
 * Everything crossing is tensors and plain data: geometry and pixels stay on the main thread (server/edit).
 */
import type { ModelInfo } from './family';
import type { Device } from './ort';
import type { EngineInput, EngineResult, Progress } from './pipeline';

export interface WorkerInit {
  modelDir: string;
  device: Device;
  threads?: number;
  /** most edits sampling at once, sharing the network's runs (batching.ts); 1 or absent: one edit at a time */
  batch?: number;
}

/**
 * The engine's own time for one edit, and the part of it inside onnxruntime. With several edits at once
 * (--batch) both are wall time while the edit ran: shared runs and the other edits' calls are included.
 */
export interface EngineTimings {
  totalMs: number;
  onnxMs: number;
}

export type ToWorker =
  | { type: 'edit'; id: string; input: EngineInput }
  | { type: 'cancel'; id: string }
  | { type: 'shutdown' };

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'log'; message: string }
  | { type: 'progress'; id: string; progress: Progress }
  | { type: 'result'; id: string; result: EngineResult; timings: EngineTimings }
  | { type: 'error'; id: string | null; message: string; cancelled: boolean };
