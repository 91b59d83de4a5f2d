/**
 * The wire protocol between the edit server and its clients (Figma plugin, UXP panel, playground, CLI).
 *
 * This module is bundled into a Figma iframe and a UXP panel: it imports nothing but zod (no Node built-ins,
 * no server code). Every limit lives here, once, as an exported constant; every schema's error messages say
 * what to send instead. The edit request is the job's complete input (STYLE rule 6): serialisable,
 * comparable, and with the seed filled in, enough to reproduce the result.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------- limits

export const MAX_INSTRUCTION_LENGTH = 500;
export const MAX_STEPS = 100;
export const MAX_VARIATIONS = 8;
export const MAX_REGIONS = 4;
/** reference images one edit may carry (families that read them: FLUX.2 klein) */
export const MAX_REFERENCES = 4;
/** 16 megapixels */
export const MAX_IMAGE_PIXELS = 4096 * 4096;
export const MAX_IMAGE_SIDE = 8192;
/** long side / short side */
export const MAX_ASPECT_RATIO = 8;
/** 64 MiB: the largest body PUT /v1/blobs accepts */
export const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;
/** jobs waiting per engine device (the running job is not counted) */
export const MAX_QUEUE_LENGTH = 64;
export const MAX_SEED = 2 ** 31 - 1;
export const MAX_HOST_DOCUMENT_KEY_LENGTH = 200;
/** previews are small PNGs inlined as data URLs; the server keeps them under this many characters */
export const MAX_PREVIEW_DATA_URL_LENGTH = 256 * 1024;
/** the long side of a preview image, in pixels */
export const PREVIEW_MAX_SIDE = 256;

/** Why an image of this size cannot be edited, or null when it can. The plugins check before uploading. */
export function imageSizeProblem(width: number, height: number): string | null {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    return `the image must be at least 1x1 pixels with integer sides, got ${width}x${height}`;
  }
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    return `the image is ${width}x${height}; each side must be at most ${MAX_IMAGE_SIDE} pixels: scale it down`;
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    return `the image is ${width}x${height} (${width * height} pixels); at most ${MAX_IMAGE_PIXELS} pixels (4096x4096) are allowed: scale it down or crop it`;
  }
  if (Math.max(width, height) / Math.min(width, height) > MAX_ASPECT_RATIO) {
    return `the image is ${width}x${height}; the long side may be at most ${MAX_ASPECT_RATIO} times the short side: crop it`;
  }
  return null;
}

// ------------------------------------------------------------------------------------------ primitives

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'number') return String(value); // NaN and Infinity print as themselves
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value;
}

/**
 * A finite number in [min, max] (or (min, max] with `minExclusive`). Every failure (wrong type, NaN,
 * Infinity, fraction, out of range) gets the same message naming the field, the allowed range and the value.
 */
function boundedNumber(name: string, min: number, max: number, opts: { integer?: boolean; minExclusive?: boolean } = {}) {
  const what = opts.integer
    ? `an integer between ${min} and ${max}`
    : opts.minExclusive
      ? `a number greater than ${min} and at most ${max}`
      : `a number between ${min} and ${max}`;
  const message = (input: unknown): string => {
    const finite = typeof input === 'number' && !Number.isFinite(input) ? 'a finite number: ' : '';
    return `${name} must be ${finite}${what}, got ${show(input)}`;
  };
  // one issue per field: stop at the first failed check (they all carry the same message)
  const check = { error: (iss: { input?: unknown }) => message(iss.input), abort: true };
  let schema = z.number(check);
  if (opts.integer) schema = schema.int(check);
  schema = opts.minExclusive ? schema.gt(min, check) : schema.gte(min, check);
  return schema.lte(max, check);
}

function uuidField(name: string, hint: string) {
  return z.uuid({ error: (iss) => `${name} must be a UUID ${hint}, got ${show(iss.input)}` });
}

/** Lowercase hex SHA-256: blob ids everywhere (strict on purpose: the server uses them as file names). */
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export const sha256Schema = z
  .string({ error: (iss) => `expected a SHA-256 digest (64 lowercase hex characters, as returned by PUT /v1/blobs), got ${show(iss.input)}` })
  .regex(SHA256_PATTERN, {
    error: (iss) => `expected a SHA-256 digest (64 lowercase hex characters, as returned by PUT /v1/blobs), got ${show(iss.input)}`,
  });

export const HOSTS = ['figma', 'photoshop', 'web', 'cli'] as const;
export const hostSchema = z.enum(HOSTS, { error: (iss) => `host must be one of ${HOSTS.join(', ')}, got ${show(iss.input)}` });
export type Host = z.infer<typeof hostSchema>;

// ------------------------------------------------------------------------------------------ edit options

export const SAMPLERS = ['euler_ancestral', 'euler', 'ddim'] as const;
export const LOCALITIES = ['guidance', 'blend', 'both'] as const;

export interface OptionBounds {
  min: number;
  max: number;
  /** the step the forms' sliders and number fields use */
  step: number;
  integer?: boolean;
  /** the value must be greater than `min` (a slider starts one step above it) */
  minExclusive?: boolean;
}

/** The numeric edit options' ranges: the schema checks them, and every form builds its controls from them. */
export const EDIT_OPTION_BOUNDS = Object.freeze({
  steps: { min: 1, max: MAX_STEPS, step: 1, integer: true },
  textScale: { min: 0, max: 30, step: 0.5 },
  imageScale: { min: 0, max: 10, step: 0.1 },
  spread: { min: 0, max: 1, step: 0.05 },
  strength: { min: 0, max: 1, step: 0.05, minExclusive: true },
  variations: { min: 1, max: MAX_VARIATIONS, step: 1, integer: true },
  seed: { min: 0, max: MAX_SEED, step: 1, integer: true },
  previewEvery: { min: 0, max: 50, step: 1, integer: true },
} satisfies Record<string, OptionBounds>);

/** A control's range for an option: min, max and step, the first value above an exclusive minimum. */
export function controlRange(bounds: OptionBounds): { min: number; max: number; step: number } {
  return { min: bounds.minExclusive ? bounds.min + bounds.step : bounds.min, max: bounds.max, step: bounds.step };
}

const bounded = (name: keyof typeof EDIT_OPTION_BOUNDS) => {
  const b: OptionBounds = EDIT_OPTION_BOUNDS[name];
  return boundedNumber(name, b.min, b.max, { integer: b.integer, minExclusive: b.minExclusive });
};

/**
 * The smallest strength that runs at least one denoising step at `steps` (the engine starts at step
 * steps - floor(steps * strength)): 1/steps, rounded up to 4 decimals so that the value named is itself enough.
 */
export function minStrengthFor(steps: number): number {
  return Math.ceil(10_000 / steps) / 10_000;
}

/** Why a strength too small for its steps is refused (it would run zero steps and return the source), or null. */
function zeroStepProblem(steps: number, strength: number): string | null {
  if (Math.floor(steps * strength) >= 1) return null;
  return `strength ${strength} runs no denoising step at ${steps} steps: use a strength of at least ${minStrengthFor(steps)} (1/steps), or more steps`;
}

/**
 * Sampling options: the one declaration of them (the engine's options are this schema's output, the CLI parses
 * through it, the plugins and the playground take their defaults and bounds from here). `seed` may be left out:
 * the server then picks one and records it with the edit, so every stored edit can be reproduced; so may
 * `sampler` (the model's own scheduler). Unknown keys are rejected so a misspelt option is never silently ignored,
 * and a strength too small to run one step at these steps is refused here, the one place that checks it.
 */
export const editOptionsSchema = z.strictObject({
  steps: bounded('steps').default(20),
  /** s_T: how strongly to follow the instruction; omitted: the model family's default (ModelInfo.defaultTextScale:
   *  InstructPix2Pix 7.5, FLUX.2 [klein] 4, as diffusers' pipelines default) */
  textScale: bounded('textScale').optional(),
  /** s_I: how strongly to stay close to the source image */
  imageScale: bounded('imageScale').default(1.5),
  /** omitted: the model's own scheduler (its scheduler_config.json) */
  sampler: z.enum(SAMPLERS, { error: (iss) => `sampler must be one of ${SAMPLERS.join(', ')}, got ${show(iss.input)}` }).optional(),
  /** guidance masking, latent blending, or both (DESIGN 4) */
  locality: z.enum(LOCALITIES, { error: (iss) => `locality must be one of ${LOCALITIES.join(', ')}, got ${show(iss.input)}` }).default('both'),
  /** 0 = exactly the mask, 1 = the whole image */
  spread: bounded('spread').default(0),
  /** 1 = start from pure noise; below 1 = start from the noised source (SDEdit/iEdit) */
  strength: bounded('strength').default(1),
  variations: bounded('variations').default(1),
  seed: bounded('seed').optional(),
  progressiveShrink: z.boolean({ error: (iss) => `progressiveShrink must be true or false, got ${show(iss.input)}` }).default(true),
  /** a preview every k steps; 0 = never */
  previewEvery: bounded('previewEvery').default(5),
}).check((ctx) => {
  const message = zeroStepProblem(ctx.value.steps, ctx.value.strength);
  if (message) ctx.issues.push({ code: 'custom', input: ctx.value.strength, path: ['strength'], message });
});
/** What a client may send (every field optional). */
export type EditOptionsInput = z.input<typeof editOptionsSchema>;
/** After parsing: defaults applied, `seed` still optional until the server picks one. */
export type EditOptionsParsed = z.output<typeof editOptionsSchema>;
/** Every default, as a form starts out. */
export const DEFAULT_EDIT_OPTIONS: Readonly<EditOptionsParsed> = Object.freeze(editOptionsSchema.parse({}));

/**
 * A client form's control for each edit option: the element id, or null where the form has none (the server's
 * default, or a value the client computes). Typed over every option, so a new option is a compile error in each
 * client until it decides; test/unit/shared/forms.test.ts checks the same at run time.
 */
export type FormControls = { readonly [K in keyof EditOptionsInput]-?: string | null };

/**
 * A numeric option's control attributes from EDIT_OPTION_BOUNDS and DEFAULT_EDIT_OPTIONS, as strings for an
 * input element; `scale` for controls in other units (a 0..100 percent slider: 100).
 */
export function controlAttributes(key: keyof typeof EDIT_OPTION_BOUNDS, scale = 1): { min: string; max: string; step: string; value: string } {
  const { min, max, step } = controlRange(EDIT_OPTION_BOUNDS[key]);
  const fallback = DEFAULT_EDIT_OPTIONS[key];
  const text = (v: number) => String(Math.round(v * scale * 1e6) / 1e6);
  return { min: text(min), max: text(max), step: text(step), value: fallback === undefined ? '' : text(fallback) };
}

// ------------------------------------------------------------------------------------------ edit request

/** Spaces, zero-width and other invisible characters only: says nothing, so it counts as empty. */
const INVISIBLE_ONLY = /^[\s\p{Cf}\p{Default_Ignorable_Code_Point}]*$/u;
/** An unpaired UTF-16 surrogate (JSON allows "\ud800"): it has no UTF-8 form and would be stored as U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const wellFormed = (name: string) => ({
  error: `${name} holds an unpaired UTF-16 surrogate (a broken character, e.g. "\\ud800"): send valid Unicode text`,
});

export const editParentSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      /** continue from a stored edit (latent iteration) */
      kind: z.literal('edit'),
      editId: uuidField('editId', '(the id of a stored edit)'),
      /**
       * What the host layer holds now. If it differs from the parent edit's result (the user painted on the
       * layer), the server re-encodes these pixels instead of reusing the stored latent.
       */
      pixelsSha256: sha256Schema.optional(),
    }),
    z.strictObject({
      /** start from pixels uploaded with PUT /v1/blobs */
      kind: z.literal('source'),
      imageSha256: sha256Schema,
    }),
  ],
  { error: (iss) => `kind must be 'edit' (continue from a stored edit) or 'source' (an uploaded image), got ${show((iss.input as { kind?: unknown } | undefined)?.kind)}` },
);
export type EditParent = z.infer<typeof editParentSchema>;

/** Text that is stored as text: PostgreSQL cannot keep U+0000 in a text column, so no store accepts it. */
export const hasNoNul = (text: string): boolean => !text.includes('\u0000');

/** Longest maskText: a phrase, not a paragraph. */
export const MAX_MASK_TEXT_LENGTH = 200;

/** Words naming a region of the image ("the circle"): trimmed, not empty. */
export const maskTextSchema = z
  .string({ error: (iss) => `maskText must be a string, got ${show(iss.input)}` })
  .refine((s) => !LONE_SURROGATE.test(s), wellFormed('maskText'))
  .trim()
  .refine((s) => !INVISIBLE_ONLY.test(s), { error: 'maskText is empty: name what to edit, e.g. "the circle", or send a mask instead' })
  .refine((s) => s.length <= MAX_MASK_TEXT_LENGTH, { error: (iss) => `maskText must be at most ${MAX_MASK_TEXT_LENGTH} characters, got ${(iss.input as string).length}: name the region in a few words` })
  .refine(hasNoNul, { error: 'maskText must not contain NUL characters (U+0000)' });

export const editRegionSchema = z.strictObject({
  /** trimmed; empty = keep the image as it is in this region */
  instruction: z
    .string({ error: (iss) => `instruction must be a string, got ${show(iss.input)}` })
    .refine((s) => !LONE_SURROGATE.test(s), wellFormed('instruction'))
    .trim()
    .overwrite((s) => (INVISIBLE_ONLY.test(s) ? '' : s))
    .max(MAX_INSTRUCTION_LENGTH, {
      error: (iss) => `instruction must be at most ${MAX_INSTRUCTION_LENGTH} characters, got ${(iss.input as string).length}: shorten it`,
    })
    .refine(hasNoNul, { error: 'instruction must not contain NUL characters (U+0000)' }),
  /** a blob holding the mask (white = edit); null = the whole image. Leave it out when sending maskText. */
  maskSha256: sha256Schema.nullable().optional(),
  /**
   * Words naming where to edit ("the circle", "the background") instead of a mask: the server derives a soft mask
   * with its segmenter (masks.preview shows it first), stores it as a blob and records both on the edit.
   */
  maskText: maskTextSchema.optional(),
}).check((ctx) => {
  const { maskSha256, maskText } = ctx.value;
  if ((maskSha256 === undefined) === (maskText === undefined)) {
    ctx.issues.push({
      code: 'custom',
      input: ctx.value,
      message: maskText === undefined
        ? 'a region needs maskSha256 (a mask blob, or null for the whole image) or maskText (words naming where to edit)'
        : 'send either maskSha256 or maskText, not both',
    });
  }
});
export type EditRegion = z.infer<typeof editRegionSchema>;
/**
 * A region as the server queues and records it: maskText resolved into the derived mask's blob (maskText kept
 * beside it, saying where the mask came from).
 */
export interface ResolvedEditRegion {
  instruction: string;
  maskSha256: string | null;
  maskText?: string;
}

/** masks.preview: the mask a region's maskText would get on an image, before the edit is made. */
export const maskPreviewInputSchema = z.strictObject({
  documentId: uuidField('documentId', '(from documents.open)'),
  /** the image the edit would apply to: an uploaded image, or the result of a stored edit */
  parent: editParentSchema,
  maskText: maskTextSchema,
});
export type MaskPreviewInput = z.input<typeof maskPreviewInputSchema>;
export const maskPreviewResultSchema = z.object({
  /** the derived soft mask as a grayscale PNG blob (GET /v1/blobs/:sha256), the layer's size */
  maskSha256: sha256Schema,
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  /** the share of the layer the mask covers (pixels at or above one half), 0..1 */
  coverage: z.number().min(0).max(1),
  /** the segmenter that made it */
  segmenter: z.string(),
});
export type MaskPreviewResult = z.infer<typeof maskPreviewResultSchema>;

export const editRequestSchema = z.strictObject({
  documentId: uuidField('documentId', '(from documents.open)'),
  parent: editParentSchema,
  regions: z
    .array(editRegionSchema, { error: (iss) => `regions must be a list of {instruction, maskSha256 or maskText}, got ${show(iss.input)}` })
    .min(1, { error: 'regions must hold at least one {instruction, maskSha256 or maskText}' })
    .max(MAX_REGIONS, { error: (iss) => `at most ${MAX_REGIONS} regions per edit, got ${(iss.input as unknown[]).length}: merge or drop some` }),
  /**
   * images uploaded with PUT /v1/blobs that the instruction refers to ("make the mug look like this"), read as
   * further reference tokens by families that can; others refuse the edit with a message
   */
  references: z
    .array(sha256Schema, { error: (iss) => `references must be a list of image sha256s, got ${show(iss.input)}` })
    .max(MAX_REFERENCES, { error: (iss) => `at most ${MAX_REFERENCES} reference images per edit, got ${(iss.input as unknown[]).length}` })
    .default([]),
  options: editOptionsSchema.prefault({}),
});
/** What a client sends. */
export type EditRequestInput = z.input<typeof editRequestSchema>;
/** A validated request, defaults applied. */
export type EditRequest = z.output<typeof editRequestSchema>;

// ------------------------------------------------------------------------------------ documents and ids

export const openDocumentSchema = z.strictObject({
  host: hostSchema,
  /** the host's own key for the document (Figma file key + page, Photoshop XMP uuid, ...) */
  hostDocumentKey: z
    .string({ error: (iss) => `hostDocumentKey must be a string, got ${show(iss.input)}` })
    .min(1, { error: 'hostDocumentKey must not be empty' })
    .max(MAX_HOST_DOCUMENT_KEY_LENGTH, { error: `hostDocumentKey must be at most ${MAX_HOST_DOCUMENT_KEY_LENGTH} characters` })
    .refine((s) => !LONE_SURROGATE.test(s), wellFormed('hostDocumentKey'))
    .refine(hasNoNul, { error: 'hostDocumentKey must not contain NUL characters (U+0000)' }),
  /** the workspace to open it in (one the caller is a member of); default the caller's default workspace */
  workspaceId: uuidField('workspaceId', '(from me)').optional(),
  /**
   * false: only open a history the workspace already has for this key (404 NO_HISTORY_MESSAGE otherwise), so a
   * plugin whose file names another workspace can ask the user before starting one. Default true: start one.
   */
  create: z.boolean({ error: (iss) => `create must be true or false, got ${show(iss.input)}` }).default(true),
});
export type OpenDocumentInput = z.input<typeof openDocumentSchema>;

/**
 * documents.open's 404 with create: false. The same for a key no workspace knows and for one only another
 * workspace knows: the server never says which (no existence oracle); the file's own marker says whose it was.
 */
export const NO_HISTORY_MESSAGE = 'no history for this file in your workspace: open it with create: true to start one';

export const jobIdSchema = uuidField('jobId', '(from edits.create)');
export const documentIdSchema = uuidField('documentId', '(from documents.open)');

export const documentHistoryInputSchema = z.strictObject({ documentId: documentIdSchema });
export const cancelJobInputSchema = z.strictObject({ jobId: jobIdSchema });
export const getJobInputSchema = z.strictObject({
  jobId: jobIdSchema,
  /** pollers that already show the preview of this step get `previewDataUrl: null` until a newer one exists */
  previewAfterStep: boundedNumber('previewAfterStep', 0, MAX_STEPS * MAX_VARIATIONS, { integer: true }).optional(),
});
/**
 * jobs.watch: tRPC's SSE link adds `lastEventId` (the last tracked id it saw) when it reconnects; event ids
 * are the events' `seq` as decimal strings (see `eventId`).
 */
export const watchJobInputSchema = z.strictObject({
  jobId: jobIdSchema,
  lastEventId: z.string().regex(/^\d{1,15}$/, { error: 'lastEventId must be a decimal event seq' }).nullish(),
});
export type DocumentHistoryInput = z.infer<typeof documentHistoryInputSchema>;
export type CancelJobInput = z.infer<typeof cancelJobInputSchema>;
export type GetJobInput = z.infer<typeof getJobInputSchema>;
export type WatchJobInput = z.infer<typeof watchJobInputSchema>;

// ------------------------------------------------------------------------------------------------- jobs

/** queued -> running -> succeeded | failed | cancelled; queued -> cancelled | failed (server shutdown) */
export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const jobStateSchema = z.enum(JOB_STATES);
export type JobState = z.infer<typeof jobStateSchema>;
export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];
export function isTerminalJobState(state: JobState): boolean {
  return TERMINAL_JOB_STATES.includes(state);
}

const eventBase = {
  jobId: z.string(),
  /** 1, 2, 3, ... per job; the SSE event id, so a reconnecting client resumes after the last one it saw */
  seq: z.number().int().positive(),
};
const stepFields = {
  /** 1-based, counted over all variations */
  step: z.number().int().nonnegative(),
  totalSteps: z.number().int().nonnegative(),
  /** index of the first variation of the batch being sampled */
  variation: z.number().int().nonnegative(),
};

export const jobResultSchema = z.object({
  /** one stored edit per variation */
  editIds: z.array(z.string()),
  /** the result images (GET /v1/blobs/:sha256), in the same order as editIds */
  resultSha256s: z.array(sha256Schema),
});
export type JobResult = z.infer<typeof jobResultSchema>;

export const jobEventSchema = z.discriminatedUnion('type', [
  /** accepted, or the number of jobs ahead changed (0 = next to start) */
  z.object({ type: z.literal('queued'), ...eventBase, position: z.number().int().nonnegative() }),
  z.object({ type: z.literal('started'), ...eventBase }),
  z.object({ type: z.literal('progress'), ...eventBase, ...stepFields }),
  /**
   * A small PNG of the predicted result (long side at most a few hundred pixels) inlined as a
   * `data:image/png;base64,...` URL, so clients show it directly (img src, Figma image bytes) without a
   * second request. Sent every `previewEvery` steps.
   */
  z.object({
    type: z.literal('preview'),
    ...eventBase,
    ...stepFields,
    dataUrl: z.string().startsWith('data:image/png;base64,').max(MAX_PREVIEW_DATA_URL_LENGTH),
  }),
  z.object({ type: z.literal('succeeded'), ...eventBase, ...jobResultSchema.shape }),
  /** message: what went wrong, written for the user */
  z.object({ type: z.literal('failed'), ...eventBase, message: z.string() }),
  z.object({ type: z.literal('cancelled'), ...eventBase }),
]);
export type JobEvent = z.infer<typeof jobEventSchema>;
export type JobEventType = JobEvent['type'];
export type JobEventOf<T extends JobEventType> = Extract<JobEvent, { type: T }>;
export type TerminalJobEvent = JobEventOf<'succeeded' | 'failed' | 'cancelled'>;

export function isTerminalJobEvent(e: JobEvent): e is TerminalJobEvent {
  return e.type === 'succeeded' || e.type === 'failed' || e.type === 'cancelled';
}

/** The SSE event id of an event (for tRPC `tracked(eventId(e), e)`). */
export function eventId(e: JobEvent): string {
  return String(e.seq);
}

/** The seq to resume after, from a `lastEventId`; 0 (replay everything) when absent. */
export function seqFromEventId(lastEventId: string | null | undefined): number {
  if (lastEventId == null || !/^\d{1,15}$/.test(lastEventId)) return 0;
  return Number(lastEventId);
}

/**
 * What jobs.get returns: everything a polling client (UXP has no EventSource) needs, small enough to poll
 * every 500 ms (the preview can be left out with `previewAfterStep`).
 */
export const jobSnapshotSchema = z.object({
  jobId: z.string(),
  documentId: z.string(),
  state: jobStateSchema,
  /** jobs ahead of this one while queued (0 = next to start); null once it left the queue */
  position: z.number().int().nonnegative().nullable(),
  /** cancel() was called while it was running; the state turns 'cancelled' when the engine stops */
  cancelRequested: z.boolean(),
  progress: z.object(stepFields).nullable(),
  /** step of the latest preview, null before the first */
  previewStep: z.number().int().nonnegative().nullable(),
  /** the latest preview (see the preview event); null if none, or not newer than `previewAfterStep` */
  previewDataUrl: z.string().nullable(),
  result: jobResultSchema.nullable(),
  error: z.string().nullable(),
  /** seq of the latest event: pass it as lastEventId to jobs.watch to switch from polling to streaming */
  lastSeq: z.number().int().nonnegative(),
  /** epoch milliseconds */
  enqueuedAt: z.number(),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
});
export type JobSnapshot = z.infer<typeof jobSnapshotSchema>;

/** edits.create's answer */
export const createEditResultSchema = z.object({
  jobId: z.string(),
  documentId: z.string(),
  /** jobs ahead of this one (0 = next to start) */
  position: z.number().int().nonnegative(),
  /** the seed the edit runs with (the request's, or the one the server picked): variation k uses seed + k */
  seed: z.number().int().nonnegative(),
});
export type CreateEditResult = z.infer<typeof createEditResultSchema>;

// ------------------------------------------------------------------------------------------- error text

/**
 * One line per issue, each saying where: `regions[1].maskSha256: expected a SHA-256 ...`, or
 * `options.steps must be an integer ...` when the message already starts with the field's name.
 */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.reduce<string>(
        (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
        '',
      );
      const last = issue.path[issue.path.length - 1];
      if (typeof last === 'string' && issue.message.startsWith(`${last} `)) return `${where}${issue.message.slice(last.length)}`;
      return where ? `${where}: ${issue.message}` : issue.message;
    })
    .join('\n');
}
