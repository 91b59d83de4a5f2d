/**
 * Every message between the main thread (code.ts) and the UI iframe (ui.ts): two discriminated unions on
 * `type`, validated with zod on receipt on both sides (a message that does not parse is reported, never
 * acted on). Requests from the UI carry a `requestId`; the main thread answers each with exactly one reply
 * carrying the same id (`edit-inputs` / `placed` / `request-failed`).
 *
 * Images travel as Uint8Array (structured clone, no base64), one image per message.
 *
 * Handshake: the UI sends `ready` first; the main thread sends nothing before it, and answers with `init`.
 */
import { z } from 'zod';
import { MAX_INSTRUCTION_LENGTH, MAX_VARIATIONS } from '../../shared/protocol';

/** A Uint8Array, also one made in another realm (iframe, vm context), where instanceof fails. */
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array || Object.prototype.toString.call(v) === '[object Uint8Array]', {
  message: 'expected image bytes (a Uint8Array)',
});

const requestId = z.string().min(1).max(64);
const nodeId = z.string().min(1).max(200);

/** longest history marker text kept (a workspace name, two ids) */
export const MAX_MARKER_LENGTH = 1000;

export const DEFAULT_SERVER_URL = 'http://localhost:7860';

/** Hosts a page served over https may still reach over plain http (browsers treat them as secure). */
const LOOPBACK_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

/**
 * Why the panel cannot reach this server URL, or null. Figma's UI is a frame inside https://www.figma.com (in
 * the desktop app too), so the browser blocks plain http to anything but this computer as mixed content,
 * whatever the manifest allows.
 */
export function serverUrlProblem(url: string): string | null {
  const m = /^(https?):\/\/([^\s/?#]+)[^\s?#]*$/i.exec(url.trim());
  if (!m) return 'The server URL must start with http:// or https:// and name a host, e.g. http://localhost:7860';
  if (m[1].toLowerCase() === 'http' && !LOOPBACK_HOST.test(m[2])) {
    return `Figma only reaches a server on another computer over https (it blocks http://${m[2]} as mixed content): use https:// for a team server, or http://localhost for one on this computer.`;
  }
  return null;
}

/** What the user sets once per machine (figma.clientStorage, never in the file). */
export const settingsSchema = z.object({
  serverUrl: z
    .string()
    .trim()
    .refine((url) => serverUrlProblem(url) === null, { error: (iss) => serverUrlProblem(String(iss.input)) ?? 'invalid server URL' })
    .transform((url) => url.replace(/\/+$/, '')),
  token: z.string().trim().max(1000, { message: 'The token is too long (at most 1000 characters)' }),
});
export type Settings = z.output<typeof settingsSchema>;
export const DEFAULT_SETTINGS: Settings = { serverUrl: DEFAULT_SERVER_URL, token: '' };

/** What the current selection will do, shown above Apply. */
export const selectionSummarySchema = z.object({
  /** false: Apply is disabled and `text` says what to change */
  ready: z.boolean(),
  text: z.string(),
  mode: z.enum(['global', 'masked']).nullable(),
  /** the source is a result layer: the edit continues from its stored latent */
  continues: z.boolean(),
  sourceName: z.string().nullable(),
  maskName: z.string().nullable(),
});
export type SelectionSummary = z.infer<typeof selectionSummarySchema>;

const pngImage = z.object({ png: bytes, width: z.number().int().positive(), height: z.number().int().positive() });
export type PngImage = z.infer<typeof pngImage>;

/** Where the edit starts, as the main thread sees it; the UI turns it into the request's `parent`. */
export const plannedParentSchema = z.discriminatedUnion('kind', [
  /** fresh pixels: upload `image`, parent {kind:'source', imageSha256} */
  z.object({ kind: z.literal('source') }),
  /**
   * continue from a stored edit; `image` (when present) is the layer's current export: upload it and send
   * its sha256 as pixelsSha256 so the server can tell whether the layer was painted on
   */
  z.object({ kind: z.literal('edit'), editId: z.string().min(1) }),
]);
export type PlannedParent = z.infer<typeof plannedParentSchema>;

export const placementTargetSchema = z.discriminatedUnion('kind', [
  /** exactly over this node, just above it (an edit's source) */
  z.object({ kind: z.literal('node'), nodeId }),
  /** over the one selected layer if there is one, else at the centre of the viewport (history: Place) */
  z.object({ kind: z.literal('selection-or-viewport') }),
]);
export type PlacementTarget = z.infer<typeof placementTargetSchema>;

// ------------------------------------------------------------------------------------------- UI -> main

export const uiToMainSchema = z.discriminatedUnion('type', [
  /** the UI is listening; `freshDocumentKey` (crypto.randomUUID in the iframe) names this file if it has no key yet */
  z.object({ type: z.literal('ready'), freshDocumentKey: z.uuid() }),
  z.object({ type: z.literal('save-settings'), settings: settingsSchema }),
  /**
   * documents.open answered: remember the id in the file, so result layers can be recognised, and the history
   * marker (whose history this is; null: a server without accounts). Written with the next result, or at once
   * with `record` (the user chose to start a new history here).
   */
  z.object({ type: z.literal('document-opened'), documentId: z.uuid(), historyMarker: z.string().max(MAX_MARKER_LENGTH).nullable().default(null), record: z.boolean().default(false) }),
  /** export what the current selection needs for an edit; continueFrom pins a history edit as the parent */
  z.object({ type: z.literal('prepare-edit'), requestId, continueFrom: z.object({ editId: z.string().min(1) }).nullable() }),
  /**
   * Place result `index` of `count` as a new layer: one message per image (a 4096 px PNG is tens of MB;
   * eight at once would all sit in the sandbox). The first (index 0) fixes where they all go; the last one
   * closes the undo step. Answered with `placed` (this layer's id; every id after the last one).
   */
  z.object({
    type: z.literal('place-result'),
    requestId,
    placementId: z.string().min(1).max(64),
    index: z.number().int().nonnegative(),
    count: z.number().int().min(1).max(MAX_VARIATIONS),
    target: placementTargetSchema,
    instruction: z.string().max(MAX_INSTRUCTION_LENGTH),
    documentId: z.string().min(1),
    editId: z.string().min(1),
    png: bytes,
  }),
  /** a placement cannot go on (a download failed): remove the layers it made */
  z.object({ type: z.literal('place-abandon'), placementId: z.string().min(1).max(64) }),
  /** export the one selected layer as the reference image of the next Apply (models that read references) */
  z.object({ type: z.literal('capture-reference'), requestId }),
  /** a toast in Figma (100 characters are shown) */
  z.object({ type: z.literal('notify'), message: z.string().max(500), error: z.boolean() }),
]);
export type UiToMain = z.infer<typeof uiToMainSchema>;

// ------------------------------------------------------------------------------------------- main -> UI

export const mainToUiSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('init'),
    settings: settingsSchema,
    /** this file's hostDocumentKey (a uuid kept in figma.root plugin data) */
    documentKey: z.string().min(1),
    /** the documentId last opened for this file, if any */
    documentId: z.string().nullable(),
    /** the file's history marker as stored (read by shared/client's parseHistoryMarker), if any */
    historyMarker: z.string().nullable(),
    selection: selectionSummarySchema,
  }),
  z.object({ type: z.literal('selection'), selection: selectionSummarySchema }),
  z.object({
    type: z.literal('edit-inputs'),
    requestId,
    sourceNodeId: nodeId,
    sourceName: z.string(),
    parent: plannedParentSchema,
    /** the source's PNG export (1x, its absolute bounds); null when continuing from a pinned history edit */
    image: pngImage.nullable(),
    /** white = edit, gray = partly, black = keep; same bounds as the source; null = global edit */
    mask: pngImage.nullable(),
  }),
  /** the reference image: the selected layer's PNG export (1x, its absolute bounds) */
  z.object({ type: z.literal('reference-captured'), requestId, nodeId, name: z.string(), image: pngImage }),
  z.object({ type: z.literal('placed'), requestId, nodeIds: z.array(z.string()).min(1) }),
  z.object({ type: z.literal('request-failed'), requestId, message: z.string() }),
  /** something went wrong outside a request (a malformed message, storage failure) */
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type MainToUi = z.infer<typeof mainToUiSchema>;

export type UiToMainOf<T extends UiToMain['type']> = Extract<UiToMain, { type: T }>;
export type MainToUiOf<T extends MainToUi['type']> = Extract<MainToUi, { type: T }>;

/** Parse a message; the error text names the message type and the first problem. */
export function parseMessage<S extends z.ZodType>(schema: S, raw: unknown, direction: string): { ok: true; message: z.output<S> } | { ok: false; error: string } {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, message: parsed.data };
  const type = raw && typeof raw === 'object' && 'type' in raw ? String((raw as { type: unknown }).type) : 'without a type';
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return { ok: false, error: `ignored a malformed ${direction} message (${type}): ${where}${issue?.message ?? 'invalid'}` };
}
