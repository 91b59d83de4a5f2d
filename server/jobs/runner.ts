/**
 * The work of one edit job (the JobQueue's injected `run`): execute its EditPlan (plan.ts resolved it once, before
 * it was queued): load the start image, latent and masks the plan names, run the engine with the job's signal,
 * forward progress and previews, then store every variation (result PNG + latent as blobs first, then all nodes
 * through ctx.commit, the job's one commit point, which also marks it succeeded).
 *
 * Starting points (plan.start):
 * - `source`: an uploaded image. The document's root source node for that image is reused, or created
 *   before the job's edit nodes; the edit encodes the pixels.
 * - `edit`: a stored edit. Latent iteration: the engine continues from its stored latent (conditioning
 *   'latent') when this engine can (usableLatent), else it encodes the edit's result.
 * - `painted`: the host layer's pixels differ from the edit's result (the user painted on the layer), so those
 *   pixels are recorded as a re-synced source node under the edit and encoded (conditioning 'pixels').
 *
 * Everything here is idempotent, so a job run again after its worker died stores the same result once: the
 * seed is in the plan, blobs are content-addressed, a source node is found before it is added, and the commit
 * returns the edits of an earlier commit of the same job.
 *
 * Errors thrown here become the job's `failed` message, so they are written for the user.
 */
import { PREVIEW_MAX_SIDE, type ResolvedEditRegion } from '../../shared/protocol';
import { editImage, type EditSource, type ImageProgress, type Region, type StoredLatent } from '../edit/edit-image';
import type { TensorEngine } from '../engine/local';
import { maskFromImage, resizeImage, type RgbaImage } from '../imaging/image';
import { NotAnImageError, type ImageBlobs } from '../imaging/image-blobs';
import { canonicalPng } from '../imaging/upload';
import type { Logger } from '../log';
import { decodeLatent, encodeLatent, type EditNodeInput, type JsonObject, type LatentRef, type RegionRef, type Store, StoreError } from '../store';
import { usableLatent, type EditPlan } from './plan';
import type { RunContext, RunJob } from './port';

/** What the runner needs of the engine: the worker client in the server (tests may run one in-process). */
export type EditEngine = TensorEngine;

export interface EditRunnerDeps {
  store: Store;
  images: ImageBlobs;
  engine: EditEngine;
  log: Logger;
  /** told about engine timings (the server's metrics) */
  observer?: EditObserver;
}

/** What the runner reports about the engine's work (ServerMetrics implements it). */
export interface EditObserver {
  /** one denoising step took `ms` (measured between two progress events of the same variation chunk) */
  onStep(ms: number): void;
  /** the engine finished an edit: its whole time, and the part inside onnxruntime */
  onEdit(timings: { totalMs: number; onnxMs: number }): void;
}

/** Where an edit starts, loaded from the plan (reads only: the engine gets going before any write). */
interface Start {
  source: EditSource;
  /**
   * The node the new edits hang under: a stored one, or a source node for these pixels that is recorded
   * (found or added) while the engine computes, since it is only needed when the results are stored.
   */
  parent: { kind: 'node'; id: string } | { kind: 'new-source'; parentId: string | null };
  /** the pixels the edit is applied to */
  sourceImageSha256: string;
}

/**
 * A job failure whose message is written for the user. Anything else a job throws (a store or file-system error,
 * an engine fault) is logged with its detail and shown as a message without server paths, errno text or
 * function names (userMessage).
 */
export class JobFailure extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JobFailure';
  }
}

/** What the user reads for an error a job threw. */
export function userMessage(err: unknown, jobId: string): string {
  if (err instanceof JobFailure) return err.message;
  if (err instanceof StoreError) {
    if (err.code === 'full' || err.code === 'unavailable') return `the result was not stored: ${err.message}. Submit the edit again once that is fixed`;
    if (err.code === 'corrupt') return `stored data this edit needs is damaged: ${err.message}`;
  }
  return `internal error while running this edit (job ${jobId}): the server logged the details; submit it again`;
}

export function createEditRunner(deps: EditRunnerDeps): RunJob {
  const run = editJob(deps);
  return async (job, ctx) => {
    try {
      return await run(job, ctx);
    } catch (err) {
      if (ctx.signal.aborted) throw err; // cancelled or shut down: the queue says so
      const message = userMessage(err, job.jobId);
      if (!(err instanceof JobFailure)) {
        const e = err instanceof Error ? err : new Error(String(err));
        deps.log.error('edit failed', { jobId: job.jobId, error: e.message, cause: e.cause instanceof Error ? e.cause.message : null, stack: e.stack ?? null });
      }
      throw new JobFailure(message, { cause: err });
    }
  };
}

/** The edit itself; what it throws is turned into the user's message by createEditRunner. */
function editJob(deps: EditRunnerDeps): RunJob {
  const { store, images, engine } = deps;
  return async (job, ctx) => {
    const log = deps.log.child({ jobId: job.jobId });
    const { plan, request } = job;
    const seed = request.options.seed;

    const began = performance.now();
    const start = await loadStart(store, images, engine, plan);
    const regions = await loadRegions(images, request.regions, start.source.image);
    const references = await Promise.all(request.references.map((sha, i) => loadImage(images, sha, `reference image ${i + 1}`)));
    if (references.length && !engine.info.readsReferences) {
      throw new JobFailure(`the ${engine.info.family} model ${engine.info.name} reads no reference images: send the edit without references`);
    }
    throwIfAborted(ctx.signal);

    const prepared = performance.now();
    const progress = progressForwarder(ctx, log, deps.observer);
    const computing = editImage(engine, { ...start.source, references }, regions, { ...request.options, seed }, {
      signal: ctx.signal,
      onProgress: progress.onProgress,
    });
    const recordingParent = parentNodeId(store, request.documentId, start, plan.owner.userId);
    const result = await computing;
    const { timings } = result;
    deps.observer?.onEdit(timings);
    await progress.flush();
    throwIfAborted(ctx.signal);
    log.info('edit computed', {
      conditioning: result.conditioning,
      variations: result.variations.length,
      totalMs: Math.round(timings.totalMs * 10) / 10,
      onnxMs: Math.round(timings.onnxMs * 10) / 10,
      prepareMs: Math.round((prepared - began) * 10) / 10,
    });
    const computed = performance.now();

    // blobs first (each durable on its own; written concurrently, so their fsyncs overlap), then the nodes
    // that reference them in one transaction
    const parentId = await recordingParent;
    const nodes: EditNodeInput[] = await Promise.all(
      result.variations.map(async (variation, k): Promise<EditNodeInput> => {
        const [image, latentBlob] = await Promise.all([images.put(variation.image), store.blobs.put(encodeLatent(variation.latent.data))]);
        const latent: LatentRef = {
          sha256: latentBlob.sha256,
          dtype: 'float16',
          shape: [variation.latent.data.length / (variation.latent.height * variation.latent.width), variation.latent.height, variation.latent.width],
          geometry: { ...variation.latent.geometry },
          scalingFactor: engine.info.scalingFactor,
        };
        return {
          parentId,
          instruction: nodeInstruction(request.regions),
          regions: regionRefs(request.regions),
          options: nodeOptions(request, seed, engine.info.name),
          seed: variation.seed,
          variation: k,
          sourceImageSha256: start.sourceImageSha256,
          resultImageSha256: image.sha256,
          latent,
          conditioning: result.conditioning,
        };
      }),
    );
    throwIfAborted(ctx.signal);
    const out = await ctx.commit(nodes);
    log.info('edit stored', { editIds: out.editIds.join(','), storeMs: Math.round((performance.now() - computed) * 10) / 10 });
    return out;
  };
}

// ------------------------------------------------------------------------------------------ starting point

async function loadStart(store: Store, images: ImageBlobs, engine: EditEngine, plan: EditPlan): Promise<Start> {
  const { start } = plan;
  const image = await loadImage(images, start.imageSha256, start.kind === 'edit' ? `the result of edit ${start.editId}` : start.kind === 'painted' ? 'the layer pixels (pixelsSha256)' : 'the source image');
  if (image.width !== plan.width || image.height !== plan.height) {
    throw new Error(`the start image is ${image.width}x${image.height}, but the plan says ${plan.width}x${plan.height}`);
  }
  if (start.kind === 'source') return { source: { kind: 'pixels', image }, parent: { kind: 'new-source', parentId: null }, sourceImageSha256: start.imageSha256 };
  if (start.kind === 'painted') return { source: { kind: 'pixels', image }, parent: { kind: 'new-source', parentId: start.editId }, sourceImageSha256: start.imageSha256 };
  const ref = usableLatent(start, engine.info);
  const latent = ref ? await loadLatent(store, start.editId, ref) : null;
  return {
    source: latent ? { kind: 'latent', image, latent } : { kind: 'pixels', image },
    parent: { kind: 'node', id: start.editId },
    sourceImageSha256: start.imageSha256,
  };
}

/** A stored latent the plan names (one this engine can continue from: usableLatent). */
async function loadLatent(store: Store, editId: string, ref: LatentRef): Promise<StoredLatent> {
  const bytes = await store.blobs.get(ref.sha256);
  if (!bytes) throw new JobFailure(`the stored latent of edit ${editId} is missing (blob ${ref.sha256}); run the store's integrity check`);
  const data = decodeLatent(bytes, ref.shape);
  return { data, height: ref.shape[1], width: ref.shape[2], geometry: { ...ref.geometry } };
}

/**
 * The id of the node the results hang under; for new pixels, the source node is recorded now (the caller
 * awaits it only when storing the results). If the edit fails first nobody awaits it, so a failure here must
 * not count as an unhandled rejection.
 */
function parentNodeId(store: Store, documentId: string, start: Start, authorId: string | undefined): Promise<string> {
  if (start.parent.kind === 'node') return Promise.resolve(start.parent.id);
  const id = store.edits.addSourceNode({ documentId, parentId: start.parent.parentId, imageSha256: start.sourceImageSha256, authorId }).then((n) => n.id);
  id.catch(() => {});
  return id;
}

async function loadImage(images: ImageBlobs, sha256: string, what: string): Promise<RgbaImage> {
  let image: RgbaImage | null;
  try {
    image = await images.get(sha256);
  } catch (err) {
    if (!(err instanceof NotAnImageError)) throw err;
    throw new JobFailure(`${what} (blob ${sha256}) is not a readable image (${err.reason}): upload it again with PUT /v1/blobs`, { cause: err });
  }
  if (!image) throw new JobFailure(`${what} (blob ${sha256}) is not on the server: upload it with PUT /v1/blobs`);
  return image;
}

// ------------------------------------------------------------------------------------------ masks

/** The regions as recorded on the nodes: a mask derived from words keeps its words (maskText) beside the blob. */
function regionRefs(regions: readonly ResolvedEditRegion[]): RegionRef[] {
  return regions.map((r) => ({ instruction: r.instruction, maskSha256: r.maskSha256, ...(r.maskText === undefined ? {} : { maskText: r.maskText }) }));
}

async function loadRegions(images: ImageBlobs, regions: readonly ResolvedEditRegion[], image: RgbaImage): Promise<Region[]> {
  const out: Region[] = [];
  for (const [i, region] of regions.entries()) {
    if (region.maskSha256 === null) {
      out.push({ instruction: region.instruction, mask: null });
      continue;
    }
    const mask = await loadImage(images, region.maskSha256, `the mask of region ${i}`);
    if (mask.width !== image.width || mask.height !== image.height) {
      throw new Error(`region ${i}: the mask is ${mask.width}x${mask.height}, but the plan checked it at ${image.width}x${image.height}`);
    }
    out.push({ instruction: region.instruction, mask: maskFromImage(mask) });
  }
  return out;
}

// ------------------------------------------------------------------------------------------ options

/** What a node records of its request: the options, seed and model, and the reference images it read, if any. */
function nodeOptions(request: EditPlan['request'], seed: number, model: string): JsonObject {
  return { ...request.options, seed, model, ...(request.references.length > 0 && { references: request.references }) } as JsonObject;
}

/** A node's one-line instruction: the regions' non-empty instructions. */
export function nodeInstruction(regions: readonly { instruction: string }[]): string {
  const parts = regions.map((r) => r.instruction.trim()).filter((s) => s.length > 0);
  return parts.length > 0 ? parts.join(' | ') : '(no change)';
}

// ------------------------------------------------------------------------------------------ progress

/**
 * Engine progress -> queue events, in order: every step a 'progress' event, and when the step carries a
 * preview, a 'preview' event with a small PNG data URL right after it. Encoding a preview is async, so
 * updates go through one promise chain; `flush` waits for it.
 */
function progressForwarder(ctx: RunContext, log: Logger, observer?: EditObserver): { onProgress: (p: ImageProgress) => void; flush: () => Promise<void> } {
  let chain: Promise<void> = Promise.resolve();
  // step timing: the first step of a chunk also holds the text/VAE encoding (or the previous chunk's decode)
  let last: { at: number; variation: number } | null = null;
  return {
    onProgress: (p) => {
      const { step, totalSteps, variation } = p;
      const now = performance.now();
      if (observer && last && last.variation === variation) observer.onStep(now - last.at);
      last = { at: now, variation };
      const preview = p.preview;
      chain = chain
        .then(async () => {
          ctx.emit({ type: 'progress', step, totalSteps, variation });
          if (preview) ctx.emit({ type: 'preview', step, totalSteps, variation, dataUrl: await previewDataUrl(preview) });
        })
        .catch((err: unknown) => log.warn('could not forward progress', { error: (err as Error).message }));
    },
    flush: () => chain,
  };
}

/** A preview as a `data:image/png;base64,...` URL, its long side at most PREVIEW_MAX_SIDE. */
export async function previewDataUrl(img: RgbaImage): Promise<string> {
  const long = Math.max(img.width, img.height);
  let small = img;
  if (long > PREVIEW_MAX_SIDE) {
    const k = PREVIEW_MAX_SIDE / long;
    small = await resizeImage(img, Math.max(1, Math.round(img.width * k)), Math.max(1, Math.round(img.height * k)));
  }
  const png = await canonicalPng(small);
  return `data:image/png;base64,${png.toString('base64')}`;
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new Error('edit cancelled');
}
