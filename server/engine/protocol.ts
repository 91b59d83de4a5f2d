/**
 * Messages between the main thread and the engine worker. onnxruntime-node's session.run blocks its thread
 * for the whole inference (engine.md 0.8), so the model lives in a worker_thread and talks only through these.
 */
import type { Device } from './ort';
import type { ModelInfo } from './models';
import type { EditOptions, EditResult, EditSource, Progress, Region } from './pipeline';

export interface WorkerInit {
  modelDir: string;
  device: Device;
  threads?: number;
}

export type ToWorker =
  | { type: 'edit'; id: string; source: EditSource; regions: Region[]; options: Partial<EditOptions> }
  | { type: 'cancel'; id: string }
  | { type: 'shutdown' };

export type FromWorker =
  | { type: 'ready'; info: ModelInfo }
  | { type: 'log'; message: string }
  | { type: 'progress'; id: string; progress: Progress }
  | { type: 'result'; id: string; result: EditResult; timings: { totalMs: number; onnxMs: number } }
  | { type: 'error'; id: string | null; message: string; cancelled: boolean };
