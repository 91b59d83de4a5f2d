/**
 * The panel's brain, without DOM: Apply (capture -> upload -> edits.create -> follow -> download -> place),
 * Cancel, variation picking, the document's history with "continue from here", and connection settings. The
 * edit's state is the shared EditSession (shared/client/session.ts, policy 'pick'); the server is the shared
 * client (polling: UXP has no event streams). The panel (panel.ts) renders `PanelState`, a view of both, and
 * forwards clicks; everything here is testable against the fake PhotoshopHost and a fake client.
 *
 * Variations (DESIGN 1.4): one variation is placed at once. Several are shown as thumbnails and the user picks
 * which to place (each as its own layer and undo step, or all of them one by one); the others stay
 * in the history list. This keeps the Layers panel free of results nobody wanted.
 */
import {
  DEFAULT_EDIT_OPTIONS,
  LOCALITIES,
  MAX_INSTRUCTION_LENGTH,
  editOptionsSchema,
  formatIssues,
  type EditOptionsInput,
  isTerminalJobEvent,
  type EditParent,
  type EditRequestInput,
  type FormControls,
} from '../../shared/protocol';
import {
  canCancel,
  encodeHistoryMarker,
  isActive,
  newSession,
  openHistory,
  parseHistoryMarker,
  phaseText,
  reduceSession,
  signedInLabel,
  authorLabel,
  modelLabel,
  submitEdit,
  type EditPhase,
  type EditSession,
  type HistoryEntry,
  type LayerloopClient,
  type SessionAction,
  type SignedIn,
  type Variation,
} from '../../shared/client';
import { captureActiveLayer, resultMask, type LayerCapture } from './capture';
import { MESSAGES, UserError, errorMessage } from './errors';
import type { HostDocument, PhotoshopHost } from './host';
import type { DocumentRecords } from './identity';
import { maskToRgba } from './pixels';
import { layerName, placeLayers, type PlaceItem } from './place';
import { base64, downscaleRgba, encodePngStored } from './thumbnail';

/** the long side of a variation thumbnail, in pixels */
export const THUMBNAIL_SIDE = 96;

export type Locality = (typeof LOCALITIES)[number];

/** What the user set in the panel. */
export interface EditForm {
  instruction: string;
  /** words naming where to edit ("the circle"), instead of the selection; '' = the selection, or the whole layer */
  maskText: string;
  locality: Locality;
  /** 0 = exactly the selection .. 1 = the whole layer */
  spread: number;
  /** (0, 1]: 1 = follow the instruction fully, lower = change less */
  strength: number;
  variations: number;
  /** null = the server picks one (and reports it) */
  seed: number | null;
  steps: number;
}

/** The protocol's defaults; no seed (the server picks one and reports it). */
export const DEFAULT_FORM: EditForm = {
  instruction: '',
  maskText: '',
  locality: DEFAULT_EDIT_OPTIONS.locality,
  spread: DEFAULT_EDIT_OPTIONS.spread,
  strength: DEFAULT_EDIT_OPTIONS.strength,
  variations: DEFAULT_EDIT_OPTIONS.variations,
  seed: null,
  steps: DEFAULT_EDIT_OPTIONS.steps,
};

/** The panel's control (index.html element id) for each edit option; null = left to the server's default. */
export const FORM_CONTROLS = {
  steps: 'steps',
  textScale: null,
  imageScale: null,
  sampler: null,
  locality: 'locality',
  spread: 'spread',
  strength: 'strength',
  variations: 'variations',
  seed: 'seed',
  progressiveShrink: null,
  previewEvery: null,
} as const satisfies FormControls;

export type Phase = EditPhase['name'];

export type VariationChoice = Variation;

export interface HistoryItem {
  editId: string;
  kind: 'source' | 'edit';
  label: string;
  seed: number | null;
  variation: number | null;
  createdAt: string;
  /** "by ben" ('' when the server names no author) */
  author: string;
  /** 0 for roots, parent's depth + 1 otherwise */
  depth: number;
  /** the active layer shows this edit */
  current: boolean;
}

/** What the panel shows: a view of the EditSession and the panel's own lines. */
export interface PanelState {
  phase: Phase;
  /** an operation runs: Apply, picking and history actions are disabled */
  busy: boolean;
  canCancel: boolean;
  /** one line of status for the user */
  status: string;
  error: string | null;
  warning: string | null;
  queuePosition: number | null;
  progress: { step: number; totalSteps: number } | null;
  preview: string | null;
  /** "what will change": the mask the words give (masks.preview) as a PNG data URL, and a line saying so */
  maskPreview: { dataUrl: string; caption: string } | null;
  /** the seed of the last job */
  seed: number | null;
  variations: VariationChoice[];
  history: HistoryItem[];
  historyTitle: string | null;
  historyStatus: string | null;
  /** "tiny-klein-distilled (FLUX.2 [klein]) on cpu": the model the server runs, once a connection was made */
  model: string | null;
  /** the server's model reads reference images: the panel offers "Use layer as reference" */
  referencesOffered: boolean;
  /** the layer whose pixels the next Apply sends as a reference image (cleared once an edit used it) */
  reference: { layerName: string; width: number; height: number } | null;
  /**
   * the question to ask when the document's marker names a workspace the user is not in and theirs has no
   * history for it (Start / Cancel); null otherwise
   */
  elsewhere: string | null;
  /** the workspace the shown history is in; null on a server without accounts */
  historyWorkspace: string | null;
}

/** A layer's pixels taken as the reference image of the next Apply. */
interface ReferenceCapture {
  layerName: string;
  width: number;
  height: number;
  rgba: Uint8Array;
}

export const IDLE_STATUS = 'Select a pixel layer, optionally make a selection, type an instruction and press Apply.';

export interface ControllerDeps {
  host: PhotoshopHost;
  /** the client for the current settings */
  client: () => LayerloopClient;
  records: DocumentRecords;
}

/** What a finished job needs to be placed (kept while the user picks variations). */
interface PendingResult {
  document: HostDocument;
  sourceLayerId: number;
  instruction: string;
  capture: Pick<LayerCapture, 'bounds' | 'width' | 'height' | 'colorProfile' | 'mask' | 'layerMask' | 'look'>;
  editIds: string[];
  sha256s: string[];
}

/** The request options from the form, validated by the shared schema (messages name the field). */
export function optionsFromForm(form: EditForm): EditOptionsInput {
  const options: EditOptionsInput = {
    steps: form.steps,
    locality: form.locality,
    spread: form.spread,
    strength: form.strength,
    variations: form.variations,
  };
  if (form.seed !== null) options.seed = form.seed;
  const parsed = editOptionsSchema.safeParse(options);
  if (!parsed.success) throw new UserError(formatIssues(parsed.error));
  return options;
}

export function validateInstruction(instruction: string): string {
  const text = instruction.trim();
  if (!text) throw new UserError('Type an instruction first, e.g. "make the sky stormy".');
  if (text.length > MAX_INSTRUCTION_LENGTH) {
    throw new UserError(`The instruction is ${text.length} characters long; at most ${MAX_INSTRUCTION_LENGTH} are allowed: shorten it.`);
  }
  return text;
}

export class PanelController {
  private session: EditSession = newSession('pick');
  /** the panel's own line for the steps the session does not describe (placing, done, idle) */
  private status = IDLE_STATUS;
  /** a history entry is being restored (not an edit) */
  private restoring = false;
  private historyItems: HistoryItem[] = [];
  private historyTitle: string | null = null;
  private historyWorkspace: string | null = null;
  private historyStatus: string | null = null;
  private state: PanelState;
  private readonly listeners = new Set<(s: PanelState) => void>();
  /** hostDocumentKey -> server document id (cleared when the server changes) */
  private readonly documentIds = new Map<string, string>();
  private pending: PendingResult | null = null;
  private historyNodes: HistoryEntry[] = [];
  private historyDocumentId: number | null = null;
  private maskPreview: PanelState['maskPreview'] = null;
  private model: string | null = null;
  private referencesOffered = false;
  private reference: ReferenceCapture | null = null;
  /** who `me` said the token is, asked once per server (undefined: not asked yet; null: a server without accounts) */
  private signedIn: SignedIn | null | undefined = undefined;
  /** the open question about a document whose history is in another workspace */
  private elsewhere: { documentId: number; question: string } | null = null;
  /** hostDocumentKey -> the workspace its history was opened in */
  private readonly workspaces = new Map<string, string | null>();

  constructor(private readonly deps: ControllerDeps) {
    this.state = this.view();
  }

  getState(): PanelState {
    return this.state;
  }

  subscribe(listener: (s: PanelState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Refresh the history whenever another document becomes active, or one is opened or closed. */
  followDocuments(): void {
    this.deps.host.onDocumentChange(() => void this.refreshHistory());
  }

  /** The server URL or token changed: forget server-side ids. */
  serverChanged(): void {
    this.documentIds.clear();
    this.workspaces.clear();
    this.signedIn = undefined;
    this.elsewhere = null;
    this.historyNodes = [];
    this.historyItems = [];
    this.historyTitle = null;
    this.historyWorkspace = null;
    this.historyStatus = null;
    this.model = null;
    this.referencesOffered = false;
    this.dispatch({ type: 'history-cleared' });
  }

  /** Which model the server runs, and whether it reads reference images (the panel's server line). */
  async loadServerInfo(): Promise<void> {
    const health = await this.client().health();
    this.model = modelLabel(health.model);
    this.referencesOffered = health.model.readsReferences === true;
    this.publish();
  }

  async testConnection(): Promise<void> {
    try {
      const client = this.client();
      await this.loadServerInfo();
      const user = signedInLabel(await client.me());
      this.dispatch({ type: 'error', message: null }, user ? `Connected to the layerloop server, signed in as ${user}.` : 'Connected to the layerloop server.');
    } catch (err) {
      this.dispatch({ type: 'error', message: errorMessage(err) });
    }
  }

  // ------------------------------------------------------------------------------------ reference image

  /**
   * "Use layer as reference": the active layer's pixels (the selection plays no part) become the reference image
   * of the next Apply; the user then selects the layer to edit. Read now, uploaded with the edit.
   */
  async useLayerAsReference(): Promise<void> {
    if (this.state.busy) return;
    try {
      const capture = await captureActiveLayer(this.deps.host, { selection: false });
      this.reference = { layerName: capture.layer.name, width: capture.width, height: capture.height, rgba: capture.rgba };
      this.dispatch({ type: 'error', message: null }, `"${capture.layer.name}" is the reference image of the next Apply: now select the layer to edit.`);
    } catch (err) {
      this.dispatch({ type: 'error', message: errorMessage(err) });
    }
  }

  removeReference(): void {
    if (this.reference === null) return;
    this.reference = null;
    this.publish();
  }

  // ------------------------------------------------------------------------------------ masks from words

  /**
   * "What will change": the mask `words` give on the active layer (masks.preview), shown in the panel before
   * Apply. Nothing is queued; the server's message (unknown words, a phrase naming nothing here) is shown.
   */
  async previewMask(words: string): Promise<void> {
    const maskText = words.trim();
    if (this.state.busy) return;
    this.maskPreview = null;
    if (maskText === '') {
      this.dispatch({ type: 'error', message: 'Type where to edit in words first, e.g. "the circle".' });
      return;
    }
    this.dispatch({ type: 'error', message: null });
    try {
      const client = this.client();
      const capture = await captureActiveLayer(this.deps.host);
      const documentId = await this.serverDocumentId(capture.document);
      const parentEditId = await this.deps.records.editForLayer(capture.document.id, capture.layer.id);
      const pixelsSha256 = (await client.putImage(capture.rgba, { rgba: { width: capture.width, height: capture.height } })).sha256;
      const parent: EditParent = parentEditId ? { kind: 'edit', editId: parentEditId, pixelsSha256 } : { kind: 'source', imageSha256: pixelsSha256 };
      const preview = await client.previewMask({ documentId, parent, maskText });
      const png = await client.getBlob(preview.maskSha256);
      this.maskPreview = {
        dataUrl: `data:image/png;base64,${base64(png)}`,
        caption: `"${maskText}" covers ${Math.round(preview.coverage * 100)} % of the layer: white is what Apply will change.`,
      };
      this.publish();
    } catch (err) {
      this.dispatch({ type: 'error', message: errorMessage(err) });
    }
  }

  /** The words changed: the preview was of other words. */
  clearMaskPreview(): void {
    if (this.maskPreview === null) return;
    this.maskPreview = null;
    this.publish();
  }

  // ------------------------------------------------------------------------------------ Apply

  async apply(form: EditForm): Promise<void> {
    if (this.state.busy) return;
    this.pending = null;
    this.dispatch({ type: 'start' });
    /** the user cancelled before the job existed */
    const stopped = (): boolean => this.session.edit.name === 'cancelled';
    try {
      const instruction = validateInstruction(form.instruction);
      const options = optionsFromForm(form);
      const client = this.client();
      const capture = await captureActiveLayer(this.deps.host);
      if (stopped()) return;
      this.dispatch({ type: 'prepared' });
      const documentId = await this.serverDocumentId(capture.document);
      const parentEditId = await this.deps.records.editForLayer(capture.document.id, capture.layer.id);
      const pixelsSha256 = (await client.putImage(capture.rgba, { rgba: { width: capture.width, height: capture.height } })).sha256;
      if (stopped()) return;
      // words, when given, name the region instead of the selection: the server derives the mask from them
      const maskText = form.maskText.trim();
      const maskSha256 = capture.mask && maskText === '' ? (await client.putImage(maskToRgba(capture.mask), { rgba: { width: capture.width, height: capture.height } })).sha256 : null;
      if (stopped()) return;
      const parent: EditParent = parentEditId ? { kind: 'edit', editId: parentEditId, pixelsSha256 } : { kind: 'source', imageSha256: pixelsSha256 };
      const region = maskText === '' ? { instruction, maskSha256 } : { instruction, maskText };
      const reference = this.referencesOffered ? this.reference : null;
      const references = reference ? [(await client.putImage(reference.rgba, { rgba: { width: reference.width, height: reference.height } })).sha256] : [];
      if (stopped()) return;
      const request: EditRequestInput = { documentId, parent, regions: [region], options, ...(references.length ? { references } : {}) };
      // not abandoned once sent: a job the server accepted is cancelled by id, never orphaned
      const { created, warning } = await submitEdit(client, request);
      if (stopped()) {
        await client.cancelJob(created.jobId).catch(() => undefined);
        return;
      }
      if (warning) this.dispatch({ type: 'warning', message: warning });
      // the reference went with this edit; the next one takes its own
      if (reference && this.reference === reference) this.reference = null;
      this.dispatch({ type: 'job-created', jobId: created.jobId, seed: created.seed, position: created.position });
      for await (const event of client.follow(created.jobId)) {
        this.dispatch({ type: 'job-event', event });
        if (isTerminalJobEvent(event)) break;
      }
      const edit = this.session.edit;
      if (edit.name !== 'placing' && edit.name !== 'picking') return; // failed or cancelled: the session says so
      const editIds = edit.name === 'placing' ? edit.editIds : edit.variations.map((v) => v.editId);
      const sha256s = edit.name === 'placing' ? edit.resultSha256s : edit.variations.map((v) => v.sha256);
      this.deps.records.remember(capture.document.id, editIds, capture.bounds);
      this.pending = {
        document: capture.document,
        sourceLayerId: capture.layer.id,
        instruction,
        capture: {
          bounds: capture.bounds,
          width: capture.width,
          height: capture.height,
          colorProfile: capture.colorProfile,
          mask: capture.mask,
          // a result layer's own mask is the selection it was made with, and its pixels outside it equal the
          // layer below: only another layer's mask (the user's) must hide what it hid
          layerMask: parentEditId ? null : capture.layerMask,
          look: capture.look,
        },
        editIds,
        sha256s,
      };
      if (edit.name === 'placing') await this.placePending([0]);
      else void this.loadThumbnails(this.pending);
    } catch (err) {
      this.dispatch({ type: 'fail', message: errorMessage(err) });
    }
    await this.refreshHistory();
  }

  /** Before the job exists nothing more is sent (apply() stops); after, the server is asked to cancel it. */
  async cancel(): Promise<void> {
    const edit = this.session.edit;
    if (!canCancel(edit)) return;
    this.dispatch({ type: 'cancel-requested' });
    if (edit.name !== 'queued' && edit.name !== 'running') return; // nothing sent yet: apply() stops itself
    try {
      await this.client().cancelJob(edit.jobId);
    } catch (err) {
      this.dispatch({ type: 'error', message: `Could not cancel: ${errorMessage(err)}` });
    }
  }

  // ------------------------------------------------------------------------------------ variations

  /** Places the chosen variation(s) of the finished job, each as its own layer. */
  async placeVariations(indexes: number[] | 'all'): Promise<void> {
    const pending = this.pending;
    if (!pending || this.state.busy) return;
    const chosen = indexes === 'all' ? pending.editIds.map((_, i) => i) : indexes;
    if (chosen.length === 0) return;
    this.dispatch({ type: 'error', message: null });
    try {
      await this.placePending(chosen);
    } catch (err) {
      this.dispatch({ type: 'fail', message: errorMessage(err) });
    }
    await this.refreshHistory();
  }

  /** Leaves the variation picker (the results stay in the history list). */
  dismissVariations(): void {
    if (this.state.busy) return;
    this.pending = null;
    this.dispatch({ type: 'dismiss' }, IDLE_STATUS);
  }

  /** One variation at a time: a full-size image in memory at most, shrunk to a small PNG and dropped. */
  private async loadThumbnails(pending: PendingResult): Promise<void> {
    for (const [index, sha256] of pending.sha256s.entries()) {
      if (this.pending !== pending) return;
      try {
        const img = await this.client().getRgba(sha256);
        const small = downscaleRgba(img.rgba, img.width, img.height, THUMBNAIL_SIDE);
        if (this.pending !== pending) return;
        this.dispatch({ type: 'thumbnail', index, dataUrl: `data:image/png;base64,${base64(encodePngStored(small.rgba, small.width, small.height))}` });
      } catch {
        // a missing thumbnail still leaves the variation pickable
      }
    }
  }

  /**
   * Places the variations one at a time: download one, place it (its own undo step), let it go, so "Place all"
   * never holds more than one full-size image (UXP stops plugins that use too much memory).
   */
  private async placePending(indexes: number[]): Promise<void> {
    const pending = this.pending;
    if (!pending) return;
    const several = pending.editIds.length > 1;
    if (several) this.dispatch({ type: 'place-picked' });
    const names: string[] = [];
    let below = pending.sourceLayerId;
    for (const i of indexes) {
      this.setStatus(several ? `Downloading variation #${i + 1}…` : 'Downloading the result…');
      const img = await this.client().getRgba(pending.sha256s[i]);
      const { width, height } = pending.capture;
      if (img.width !== width || img.height !== height) {
        throw new UserError(`The server returned a ${img.width}x${img.height} result for a ${width}x${height} layer: it cannot be placed exactly. Try again.`);
      }
      const item: PlaceItem = {
        editId: pending.editIds[i],
        name: layerName(pending.instruction, several ? i : null),
        rgba: img.rgba,
        width,
        height,
        left: pending.capture.bounds.left,
        top: pending.capture.bounds.top,
        colorProfile: pending.capture.colorProfile,
        mask: resultMask(pending.capture),
        look: pending.capture.look,
      };
      this.setStatus(several ? `Placing variation #${i + 1}…` : 'Placing the result…');
      const placed = await placeLayers(this.deps.host, this.deps.records, pending.document, below, [item], historyName(pending.instruction));
      below = placed.layerIds[0];
      names.push(`"${item.name}"`);
      if (placed.warning) this.dispatch({ type: 'warning', message: placed.warning });
      if (several) this.dispatch({ type: 'placed', layers: 1, indexes: [i] });
    }
    const status = `Placed ${names.join(', ')} above the source layer. Apply again to continue from ${names.length > 1 ? 'the top one' : 'it'}.`;
    if (several) {
      this.setStatus(status);
    } else {
      this.pending = null;
      this.dispatch({ type: 'placed', layers: 1 }, status);
    }
  }

  // ------------------------------------------------------------------------------------ another workspace's history

  /** Start: a new history for the document in the user's workspace, and its XMP marker rewritten at once. */
  async startNewHistory(): Promise<void> {
    const ask = this.elsewhere;
    if (!ask || this.state.busy) return;
    const document = this.deps.host.activeDocument();
    this.elsewhere = null;
    this.session = reduceSession(this.session, { type: 'dismiss' }); // the Apply that asked failed with the question
    if (!document || document.id !== ask.documentId) {
      this.dispatch({ type: 'error', message: null }, 'The document that question was about is no longer active: press Apply in it to be asked again.');
      return;
    }
    try {
      await this.serverDocumentId(document, true);
      // one named undo step (a bare metadata write would show as "File Info")
      const step = 'layerloop: start a new history';
      const warning = await this.deps.host.executeAsModal(step, async (ctx) => {
        const suspension = await ctx.suspendHistory(document.id, step);
        const problem = await this.deps.records.recordHistory(document);
        await ctx.resumeHistory(suspension, true);
        return problem;
      });
      this.dispatch({ type: 'warning', message: warning }, 'Started a new layerloop history for this document in your workspace: press Apply to edit.');
    } catch (err) {
      this.dispatch({ type: 'error', message: errorMessage(err) });
    }
    await this.refreshHistory();
  }

  /** Cancel: nothing is started; the next Apply asks again. */
  cancelNewHistory(): void {
    if (!this.elsewhere) return;
    this.elsewhere = null;
    this.session = reduceSession(this.session, { type: 'dismiss' });
    this.dispatch({ type: 'error', message: null }, "No history was started: this document's layerloop history is in another workspace. Apply asks again.");
  }

  // ------------------------------------------------------------------------------------ history

  /** Loads the active document's history from the server. */
  async refreshHistory(): Promise<void> {
    const document = this.deps.host.activeDocument();
    if (!document) {
      this.historyNodes = [];
      this.setHistory([], null, MESSAGES.noDocument);
      return;
    }
    try {
      const identity = await this.deps.records.identify(document);
      const known = this.documentIds.get(identity.key);
      if (!identity.stored && !known) {
        this.historyNodes = [];
        this.historyDocumentId = document.id;
        this.setHistory([], document.title, 'No layerloop edits in this document yet.');
        return;
      }
      const documentId = known ?? (await this.serverDocumentId(document));
      const nodes = await this.client().history(documentId);
      this.historyWorkspace = this.workspaces.get(identity.key) ?? null;
      const current = await this.currentEditId(document);
      this.historyNodes = nodes;
      this.historyDocumentId = document.id;
      this.session = reduceSession(this.session, { type: 'history-loaded', entries: nodes });
      const items = historyItems(nodes, current);
      this.setHistory(items, document.title, items.length ? null : 'No layerloop edits in this document yet.');
    } catch (err) {
      if (this.elsewhere?.documentId === document.id) {
        // the question in the panel says whose history it is; nothing of it is shown here
        this.historyNodes = [];
        this.historyWorkspace = null;
        return this.setHistory([], document.title, 'This document’s layerloop history is in another workspace.');
      }
      this.setHistory(this.historyItems, document.title, `Could not load the history: ${errorMessage(err)}`);
    }
  }

  /**
   * "Continue from here": brings a history entry back as a new layer (above the active layer, where the edit
   * was made), mapped to that edit and made active, so the next Apply continues from its stored latent.
   */
  async continueFrom(editId: string): Promise<void> {
    if (this.state.busy) return;
    const node = this.historyNodes.find((n) => n.id === editId);
    if (!node) return;
    this.restoring = true;
    this.dispatch({ type: 'error', message: null }, 'Downloading the history entry…');
    try {
      const document = this.deps.host.activeDocument();
      if (!document) throw new UserError(MESSAGES.noDocument);
      if (document.id !== this.historyDocumentId) throw new UserError('The history shown belongs to another document: press Refresh.');
      const img = await this.client().getRgba(node.resultImageSha256);
      const active = this.deps.host.activeLayers(document.id);
      const above = active.length === 1 ? active[0] : null;
      const at =
        (await this.recordedPlace(document.id, node)) ??
        (above && above.bounds.right - above.bounds.left === img.width && above.bounds.bottom - above.bounds.top === img.height
          ? { left: above.bounds.left, top: above.bounds.top }
          : { left: 0, top: 0 });
      this.setStatus('Placing the history entry…');
      const label = node.kind === 'source' ? 'original' : (node.instruction ?? 'edit');
      const name = layerName(`${label} (from history)`, null);
      const placed = await placeLayers(
        this.deps.host,
        this.deps.records,
        document,
        above ? above.id : null,
        [{ editId, name, rgba: img.rgba, width: img.width, height: img.height, left: at.left, top: at.top, colorProfile: document.colorProfile, mask: null, look: null }],
        historyName(`restore ${label}`),
      );
      this.restoring = false;
      this.dispatch({ type: 'warning', message: placed.warning }, `Restored as "${name}". Type an instruction and press Apply to continue from it.`);
    } catch (err) {
      this.restoring = false;
      this.dispatch({ type: 'error', message: errorMessage(err) }, 'Could not restore the history entry.');
    }
    await this.refreshHistory();
  }

  // ------------------------------------------------------------------------------------ internals

  private client(): LayerloopClient {
    return this.deps.client();
  }

  /** Where a history entry's image belongs: its own recorded place, or its nearest ancestor's (edits keep the size). */
  private async recordedPlace(documentId: number, node: HistoryEntry): Promise<{ left: number; top: number } | null> {
    const seen = new Set<string>();
    for (let n: HistoryEntry | undefined = node; n && !seen.has(n.id); n = this.historyNodes.find((x) => x.id === n!.parentId)) {
      seen.add(n.id);
      const at = await this.deps.records.placeOf(documentId, n.id);
      if (at) return at;
    }
    return null;
  }

  private async currentEditId(document: HostDocument): Promise<string | null> {
    const layers = this.deps.host.activeLayers(document.id);
    return layers.length === 1 ? this.deps.records.editForLayer(document.id, layers[0].id) : null;
  }

  /**
   * The server's document for this Photoshop document (shared/client's openHistory reads its XMP marker against
   * `me`). When the marker names a workspace the user is not in and theirs has no history for it, nothing is
   * created: the panel asks (`elsewhere`) and this throws. `startNew`: the user answered Start.
   */
  private async serverDocumentId(document: HostDocument, startNew = false): Promise<string> {
    const identity = await this.deps.records.identify(document);
    const known = this.documentIds.get(identity.key);
    if (known && !startNew) return known;
    const client = this.client();
    if (this.signedIn === undefined) this.signedIn = await client.me();
    const recorded = parseHistoryMarker(await this.deps.records.historyMarker(document));
    const opened = await openHistory(client, 'photoshop', identity.key, recorded, this.signedIn, { startNew });
    if (opened.kind === 'elsewhere') {
      this.elsewhere = { documentId: document.id, question: opened.question };
      this.publish();
      throw new UserError(MESSAGES.historyElsewhere);
    }
    if (this.elsewhere?.documentId === document.id) this.elsewhere = null;
    this.documentIds.set(identity.key, opened.documentId);
    this.workspaces.set(identity.key, opened.workspace?.name ?? null);
    if (opened.marker) this.deps.records.openedHistory(document.id, encodeHistoryMarker(opened.marker));
    return opened.documentId;
  }

  private setHistory(items: HistoryItem[], title: string | null, status: string | null): void {
    this.historyItems = items;
    this.historyTitle = title;
    this.historyStatus = status;
    this.publish();
  }

  private setStatus(status: string): void {
    this.status = status;
    this.publish();
  }

  private dispatch(action: SessionAction, status?: string): void {
    this.session = reduceSession(this.session, action);
    if (status !== undefined) this.status = status;
    this.publish();
  }

  private publish(): void {
    this.state = this.view();
    for (const listener of this.listeners) listener(this.state);
  }

  /** The panel's view of the session. */
  private view(): PanelState {
    const { edit, warning, error } = this.session;
    const running = edit.name === 'running' ? edit : null;
    const seed = 'seed' in edit ? edit.seed : null;
    const previews = edit.name === 'running' || edit.name === 'placing' ? edit.previews : [];
    const fullBar = edit.name === 'placing' || edit.name === 'done';
    return {
      phase: edit.name,
      busy: isActive(edit) || this.restoring,
      canCancel: canCancel(edit),
      status: this.statusOf(edit),
      error: error ?? (edit.name === 'failed' ? edit.message : null),
      warning,
      queuePosition: edit.name === 'queued' ? edit.position : null,
      progress: running ? { step: running.step, totalSteps: running.totalSteps } : fullBar ? { step: 1, totalSteps: 1 } : null,
      preview: previews.length ? previews[previews.length - 1].dataUrl : null,
      maskPreview: this.maskPreview,
      seed,
      variations: edit.name === 'picking' ? edit.variations : [],
      history: this.historyItems,
      historyTitle: this.historyTitle,
      historyStatus: this.historyStatus,
      model: this.model,
      referencesOffered: this.referencesOffered,
      reference: this.reference && { layerName: this.reference.layerName, width: this.reference.width, height: this.reference.height },
      elsewhere: this.elsewhere?.question ?? null,
      historyWorkspace: this.historyWorkspace,
    };
  }

  private statusOf(edit: EditPhase): string {
    switch (edit.name) {
      case 'preparing':
        return 'Reading the layer…';
      case 'uploading':
        return 'Uploading the layer…';
      case 'failed':
        return 'The edit did not complete.';
      case 'idle':
      case 'placing':
      case 'done':
        return this.status;
      case 'picking':
        return edit.busy || edit.variations.some((v) => v.placed) ? this.status : phaseText(edit, { preparing: '', placing: '', done: () => '' });
      default:
        return phaseText(edit, { preparing: '', placing: '', done: () => '' });
    }
  }
}

function historyName(instruction: string): string {
  const text = instruction.length > 60 ? `${instruction.slice(0, 59)}…` : instruction;
  return `layerloop: ${text}`;
}

/** Newest first, each with its depth in the tree (parents come before children in `nodes`). */
export function historyItems(nodes: readonly HistoryEntry[], currentEditId: string | null): HistoryItem[] {
  const depth = new Map<string, number>();
  const items: HistoryItem[] = [];
  for (const n of nodes) {
    const d = n.parentId !== null && depth.has(n.parentId) ? (depth.get(n.parentId) as number) + 1 : 0;
    depth.set(n.id, d);
    items.push({
      editId: n.id,
      kind: n.kind,
      label: n.kind === 'source' ? 'Original layer' : (n.instruction ?? '(no instruction)'),
      seed: n.seed,
      variation: n.variation,
      createdAt: n.createdAt,
      author: authorLabel(n),
      depth: d,
      current: n.id === currentEditId,
    });
  }
  return items.reverse();
}
