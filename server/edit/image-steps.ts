/**
 * Where the image side of an edit runs: prepare.ts before the engine, compose.ts after it.
 *
 * On a layer larger than the model's working area those steps are seconds of CPU (detail transfer, the paste
 * mask, compositing at full size: bench/RESULTS.md, "The image side off the main thread"); on the server's main
 * thread that would stall every request, progress stream and upload for as long. So such layers go to a small
 * pool of worker threads (image-worker.ts, with its own sharp; the engine's worker stays free of image
 * libraries). The main thread only copies the source and masks into shared memory, in slices with the event
 * loop free between them; the workers read them there (an edit's prepare and all its variations' places share
 * one copy) and hand the composited results back without a copy.
 *
 * A layer no larger than the working area stays in-process: there is no detail to restore, and resampling and
 * compositing it take a few milliseconds, about what handing them to a worker costs.
 */
import { availableParallelism } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { types } from 'node:util';
import { Worker } from 'node:worker_threads';
import { builtBundle } from '../bundles';
import type { RgbaImage } from '../imaging/image';
import { placeEdit, type PlaceInput } from './compose';
import { prepareEdit, type PrepareInput, type Prepared } from './prepare';

/** The pixels an edit reads: the source and each region's source-sized mask. */
export interface EditPixels {
  source: RgbaImage;
  masks: (Float32Array | null)[];
}

export interface ImageSteps {
  /** the pixels as the steps read them (the workers: in shared memory); pass these to prepare and place */
  share(pixels: EditPixels): Promise<EditPixels>;
  prepare(input: PrepareInput): Promise<Prepared>;
  place(input: PlaceInput): Promise<RgbaImage>;
}

/** The steps on the calling thread. */
export const inProcessSteps: ImageSteps = {
  share: async (pixels) => pixels,
  prepare: prepareEdit,
  place: placeEdit,
};

let sharedWorkers: ImageWorkers | null = null;

/**
 * The steps for a source of `sourcePixels` edited at a working area of `workPixels`: in-process when the source
 * is no larger, else the process's image workers, started on first use (like the libuv pool sharp already runs
 * on, a resource of the process: the server's runner, the CLI and the benchmarks share it; idle workers do not
 * keep the process alive).
 */
export function imageStepsFor(sourcePixels: number, workPixels: number): ImageSteps {
  if (sourcePixels <= workPixels) return inProcessSteps;
  return (sharedWorkers ??= new ImageWorkers());
}

/** What the pool posts to a worker, and what comes back. */
export type ToImageWorker = { step: 'prepare'; input: PrepareInput } | { step: 'place'; input: PlaceInput };
export type FromImageWorker = { prepared: Prepared } | { placed: RgbaImage } | { error: string };

interface Task {
  message: ToImageWorker;
  resolve: (reply: FromImageWorker) => void;
  reject: (err: Error) => void;
}

/** bytes copied per slice into shared memory, between which the event loop runs (~ a few ms each) */
const SLICE_BYTES = 4 << 20;

/**
 * A pool of image workers, started as tasks need them, up to `size`; one task per worker at a time, the rest
 * wait in order. A worker that dies fails its task with the reason and is replaced by the next task.
 */
export class ImageWorkers implements ImageSteps {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task>();
  private readonly waiting: Task[] = [];
  private readonly live = new Set<Worker>();
  private closed = false;

  constructor(
    readonly size = Math.min(2, availableParallelism()),
    private readonly file = builtBundle('image-worker.js'),
  ) {}

  async share({ source, masks }: EditPixels): Promise<EditPixels> {
    const data = await sharedCopy(source.data);
    const shared: (Float32Array | null)[] = [];
    for (const m of masks) shared.push(m && (await sharedMask(m)));
    return { source: { width: source.width, height: source.height, data }, masks: shared };
  }

  async prepare(input: PrepareInput): Promise<Prepared> {
    const reply = await this.run({ step: 'prepare', input });
    if (!('prepared' in reply)) throw new Error('internal error: the image worker answered a prepare step with something else');
    return reply.prepared;
  }

  async place(input: PlaceInput): Promise<RgbaImage> {
    const reply = await this.run({ step: 'place', input });
    if (!('placed' in reply)) throw new Error('internal error: the image worker answered a place step with something else');
    return reply.placed;
  }

  /** Stop every worker; tasks still waiting or running fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.waiting.splice(0)) task.reject(new Error('the image workers were closed'));
    await Promise.all([...this.live].map((w) => w.terminate()));
  }

  private run(message: ToImageWorker): Promise<FromImageWorker> {
    if (this.closed) return Promise.reject(new Error('the image workers were closed'));
    return new Promise<FromImageWorker>((resolve, reject) => {
      this.waiting.push({ message, resolve, reject });
      this.dispatch();
    }).then((reply) => {
      if ('error' in reply) throw new Error(reply.error);
      return reply;
    });
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const worker = this.idle.pop() ?? (this.live.size < this.size ? this.spawn() : null);
      if (!worker) return;
      const task = this.waiting.shift()!;
      this.busy.set(worker, task);
      worker.ref(); // a task in flight keeps the process alive, an idle worker does not
      worker.postMessage(task.message);
    }
  }

  private spawn(): Worker {
    const worker = new Worker(this.file);
    this.live.add(worker);
    worker.on('message', (reply: FromImageWorker) => {
      const task = this.busy.get(worker);
      this.busy.delete(worker);
      worker.unref();
      this.idle.push(worker);
      task?.resolve(reply);
      this.dispatch();
    });
    worker.on('error', (err) => this.lose(worker, err.message));
    worker.on('exit', (code) => this.lose(worker, `it exited with code ${code}`));
    return worker;
  }

  private lose(worker: Worker, reason: string): void {
    if (!this.live.delete(worker)) return;
    const at = this.idle.indexOf(worker);
    if (at >= 0) this.idle.splice(at, 1);
    const task = this.busy.get(worker);
    this.busy.delete(worker);
    task?.reject(new Error(this.closed ? 'the image workers were closed' : `the image worker failed (${reason})`));
    if (!this.closed) this.dispatch();
  }
}

/** `bytes` in shared memory (as is when they are there already), copied in slices with the event loop free between them. */
async function sharedCopy(bytes: Uint8Array): Promise<Uint8Array> {
  if (types.isSharedArrayBuffer(bytes.buffer)) return bytes;
  const out = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
  for (let at = 0; at < bytes.byteLength; at += SLICE_BYTES) {
    if (at > 0) await nextTurn();
    out.set(bytes.subarray(at, at + SLICE_BYTES), at);
  }
  return out;
}

async function sharedMask(mask: Float32Array): Promise<Float32Array> {
  if (types.isSharedArrayBuffer(mask.buffer)) return mask;
  return new Float32Array((await sharedCopy(new Uint8Array(mask.buffer, mask.byteOffset, mask.byteLength))).buffer);
}
