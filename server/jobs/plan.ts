/**
 * The edit request resolved once (STYLE: Krita's `prepare()`): `prepareEditPlan` checks an EditRequest against
 * the store and the uploaded blobs and returns an `EditPlan`, the job's complete, serialisable input: where the
 * edit starts (a new root image, pixels painted over a stored edit, or a stored edit and its latent), the start
 * image's size, and the request with its seed and sampler filled in.
 *
 * The API calls it before queueing (a bad request is a 4xx now rather than a failed job later); the queue stores
 * the plan (in memory or in Redis) and the runner executes it without resolving anything again. Nothing a plan
 * points at can change after it was made: nodes are immutable and blobs content-addressed.
 *
 * It is also where a request is held to the caller's view (users and workspaces): a document, parent or blob the
 * caller's workspaces cannot see is "not found", exactly as one that does not exist; masks from words are derived
 * (and stored) here, so the plan holds only blobs; and reference images are checked against what the model reads.
 */
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { MAX_SEED, editRequestSchema, type EditRequest, type ResolvedEditRegion } from '../../shared/protocol';
import type { RgbaImage } from '../imaging/image';
import { NotAnImageError, type ImageBlobs } from '../imaging/image-blobs';
import { LatentRef, type Document, type EditStore } from '../store';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** Where an edit starts. */
export const editStartSchema = z.discriminatedUnion('kind', [
  /** an uploaded image: the document's root source node for it is found or added */
  z.strictObject({ kind: z.literal('source'), imageSha256: sha256 }),
  /** the user painted over a stored edit: those pixels are recorded as a source node under it, and encoded */
  z.strictObject({ kind: z.literal('painted'), editId: z.uuid(), imageSha256: sha256 }),
  /**
   * latent iteration: continue from a stored edit's result. `latent` is its stored latent (null when it has
   * none); the engine uses it when it was made by a compatible model (usableLatent), else encodes the pixels.
   */
  z.strictObject({
    kind: z.literal('edit'),
    editId: z.uuid(),
    imageSha256: sha256,
    latent: LatentRef.nullable(),
    /** the model that made the edit (its recorded options.model), null when not recorded */
    madeBy: z.string().nullable(),
  }),
]);
export type EditStart = z.infer<typeof editStartSchema>;

/** A region as planned: its mask is a blob (or null), words it was derived from kept beside it. */
const plannedRegionSchema = z.strictObject({ instruction: z.string(), maskSha256: sha256.nullable(), maskText: z.string().optional() });

export const editPlanSchema = z.strictObject({
  /** the complete request: seed and sampler filled in, so the stored request reproduces the result */
  request: editRequestSchema
    .extend({ regions: z.array(plannedRegionSchema).min(1) })
    .refine((r) => r.options.seed !== undefined && r.options.sampler !== undefined, {
      error: "the plan's request must carry its seed and sampler",
    }),
  /** who asked (recorded with the job, the author of its nodes) and the document's workspace */
  owner: z.strictObject({ userId: z.string().min(1), workspaceId: z.string().min(1) }),
  start: editStartSchema,
  /** the start image's size; every region's mask has it */
  width: z.number().int().min(1),
  height: z.number().int().min(1),
});
type SamplerName = NonNullable<EditRequest['options']['sampler']>;

/** The job's complete input; parse it with editPlanSchema wherever it crosses a process boundary. */
export interface EditPlan {
  request: Omit<EditRequest, 'regions'> & { regions: ResolvedEditRegion[]; options: { seed: number; sampler: SamplerName } };
  owner: { userId: string; workspaceId: string };
  start: EditStart;
  width: number;
  height: number;
}

/** Parses a plan that came from elsewhere (Redis); throws with what is wrong. */
export function parseEditPlan(value: unknown): EditPlan {
  return editPlanSchema.parse(value) as EditPlan;
}

/** Why a request cannot become a plan; `field` is the request field to fix. */
export class PlanError extends Error {
  constructor(
    readonly code: 'not_found' | 'bad_request',
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'PlanError';
  }
}

export interface PlanDeps {
  edits: Pick<EditStore, 'getDocument' | 'getNode'>;
  images: Pick<ImageBlobs, 'get'>;
  /** what a request without a sampler gets (the model's default) */
  defaultSampler: SamplerName;
  /** a seed for a request without one (default: a random one) */
  newSeed?: () => number;
  /** the model the edit runs on: whether it reads reference images (FLUX.2 klein); others refuse `references` */
  model: { family: string; name: string; readsReferences: boolean };
  /** the caller: its user, and whether it may see a document or read a blob (unknown and foreign alike) */
  caller: {
    userId: string;
    seesDocument: (document: Document) => boolean;
    readsBlob: (sha256: string) => Promise<boolean>;
  };
  /**
   * Masks from words: the mask `maskText` names in `image`, stored; returns its sha256. Throws (a 4xx the API
   * maps) when the words name nothing. Absent: maskText is refused.
   */
  maskFromWords?: (image: RgbaImage, maskText: string, field: string, owner: EditPlan['owner']) => Promise<string>;
}

/** Resolve a parsed request into a plan, or throw PlanError saying what to fix. */
export async function prepareEditPlan(deps: PlanDeps, input: EditRequest): Promise<EditPlan> {
  const { caller } = deps;
  const document = await visibleDocument(deps, input.documentId);
  if (input.regions.every((r) => r.instruction === '')) {
    throw new PlanError('bad_request', 'regions', 'every instruction is empty: say what to change in at least one region');
  }
  const owner = { userId: caller.userId, workspaceId: document.workspaceId };
  const { start, image } = await resolveStart(deps, input);
  const { model } = deps;
  if (input.references.length > 0 && !model.readsReferences) {
    throw new PlanError('bad_request', 'references', `the ${model.family} model ${model.name} reads no reference images: send the edit without references`);
  }
  for (const [i, sha] of input.references.entries()) await blobImage(deps, sha, `references[${i}]`);
  const regions: ResolvedEditRegion[] = [];
  for (const [i, region] of input.regions.entries()) {
    if (region.maskText !== undefined) {
      const field = `regions[${i}].maskText`;
      if (!deps.maskFromWords) throw new PlanError('bad_request', field, 'this server derives no masks from words: send a mask (maskSha256) instead');
      regions.push({ instruction: region.instruction, maskSha256: await deps.maskFromWords(image, region.maskText, field, owner), maskText: region.maskText });
      continue;
    }
    const maskSha256 = region.maskSha256 ?? null;
    regions.push({ instruction: region.instruction, maskSha256 });
    if (maskSha256 === null) continue;
    const field = `regions[${i}].maskSha256`;
    const mask = await blobImage(deps, maskSha256, field);
    const problem = maskSizeProblem(mask, image);
    if (problem) throw new PlanError('bad_request', field, problem);
    if (maskIsEmpty(mask)) {
      throw new PlanError('bad_request', field, 'the mask is empty (all black): paint the area to edit white, or send maskSha256: null to edit the whole image');
    }
  }
  const seed = input.options.seed ?? (deps.newSeed ?? (() => randomInt(0, MAX_SEED)))();
  const sampler = input.options.sampler ?? deps.defaultSampler;
  const request = structuredClone({ ...input, regions, options: { ...input.options, seed, sampler } });
  return { request, owner, start, width: image.width, height: image.height };
}

/**
 * The document and the image an edit of `request` would apply to, as the caller may see them (masks.preview
 * shows a mask on it before the edit is made); PlanError as for a plan.
 */
export async function planStartImage(
  deps: Pick<PlanDeps, 'edits' | 'images' | 'caller'>,
  request: Pick<EditRequest, 'documentId' | 'parent'>,
): Promise<{ document: Document; image: RgbaImage }> {
  const document = await visibleDocument(deps, request.documentId);
  return { document, image: (await resolveStart(deps, request)).image };
}

/** The document when the caller may see it; not found otherwise (unknown and foreign alike). */
async function visibleDocument({ edits, caller }: Pick<PlanDeps, 'edits' | 'caller'>, documentId: string): Promise<Document> {
  const document = await edits.getDocument(documentId);
  if (!document || !caller.seesDocument(document)) throw new PlanError('not_found', 'documentId', `no document ${documentId}: get one from documents.open`);
  return document;
}

async function resolveStart(deps: Pick<PlanDeps, 'edits' | 'images' | 'caller'>, request: Pick<EditRequest, 'documentId' | 'parent'>): Promise<{ start: EditStart; image: RgbaImage }> {
  const { parent, documentId } = request;
  if (parent.kind === 'source') {
    return { start: { kind: 'source', imageSha256: parent.imageSha256 }, image: await blobImage(deps, parent.imageSha256, 'parent.imageSha256') };
  }
  // the document is visible (checked first), so a node of it is too; a node of another document is not found
  const node = await deps.edits.getNode(parent.editId);
  if (!node || node.documentId !== documentId) {
    throw new PlanError('not_found', 'parent.editId', `${parent.editId} is not an edit of document ${documentId}: use an id from documents.history or a job result`);
  }
  if (parent.pixelsSha256 !== undefined && parent.pixelsSha256 !== node.resultImageSha256) {
    const image = await blobImage(deps, parent.pixelsSha256, 'parent.pixelsSha256');
    return { start: { kind: 'painted', editId: node.id, imageSha256: parent.pixelsSha256 }, image };
  }
  const image = await blobImage(deps, node.resultImageSha256, `the result of edit ${node.id}`);
  const madeBy = typeof node.options.model === 'string' ? node.options.model : null;
  return { start: { kind: 'edit', editId: node.id, imageSha256: node.resultImageSha256, latent: node.latent, madeBy }, image };
}

/** An uploaded image's pixels; PlanError when absent, not readable by the caller (the same answer), or not an image. */
async function blobImage({ images, caller }: Pick<PlanDeps, 'images' | 'caller'>, sha256: string, field: string): Promise<RgbaImage> {
  let image: RgbaImage | null;
  try {
    image = (await caller.readsBlob(sha256)) ? await images.get(sha256) : null;
  } catch (err) {
    if (!(err instanceof NotAnImageError)) throw err;
    throw new PlanError('bad_request', field, `blob ${sha256} is not an image: pass the sha256 that PUT /v1/blobs returned for an image`);
  }
  if (!image) throw new PlanError('not_found', field, `no blob ${sha256} on this server: upload the image with PUT /v1/blobs first`);
  return image;
}

/** True when no pixel of the mask (its first channel, as the engine reads it) is above 0. */
function maskIsEmpty(mask: RgbaImage): boolean {
  for (let i = 0; i < mask.data.length; i += 4) if (mask.data[i] > 0) return false;
  return true;
}

/** Null when the mask fits the image; else what to fix. */
export function maskSizeProblem(mask: { width: number; height: number }, image: { width: number; height: number }): string | null {
  if (mask.width === image.width && mask.height === image.height) return null;
  return `the mask is ${mask.width}x${mask.height} but the image is ${image.width}x${image.height}: export the mask at the image's size`;
}

/**
 * Whether an engine can continue from a plan's stored latent: made with the same VAE scaling, by the same model
 * when that was recorded, and of the [C, h, w] shape stored latents have. Otherwise the engine encodes the pixels.
 */
export function usableLatent(start: EditStart, engine: { name: string; scalingFactor: number }): LatentRef | null {
  if (start.kind !== 'edit' || !start.latent) return null;
  const ref = start.latent;
  if (ref.scalingFactor !== engine.scalingFactor || (start.madeBy !== null && start.madeBy !== engine.name) || ref.shape.length !== 3) return null;
  return ref;
}

/** Every blob the plan's run reads: the start image, the masks and the references (a stored latent is durable already). */
export function planBlobs(plan: EditPlan): string[] {
  const masks = plan.request.regions.map((r) => r.maskSha256).filter((sha): sha is string => sha !== null);
  return [...new Set([plan.start.imageSha256, ...masks, ...plan.request.references])];
}
