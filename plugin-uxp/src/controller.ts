/**
 * The panel's brain, without DOM: Apply (capture -> upload -> edits.create -> poll -> download -> place),
 * Cancel, variation picking, the document's history with "continue from here", and connection settings.
 * The panel (panel.ts) renders `PanelState` and forwards clicks; everything here is testable against the fake
 * PhotoshopHost and a fake LayerloopApi.
 *
 * Variations (DESIGN 1.4): one variation is placed at once. Several are shown as thumbnails and the user picks
 * which to place (each as its own layer, or all of them, each its own layer in one undo step); the others stay
 * in the history list. This keeps the Layers panel free of results nobody wanted.
 */
import {
  LOCALITIES,
  MAX_INSTRUCTION_LENGTH,
  editOptionsSchema,
  formatIssues,
  type EditOptionsInput,
  type EditParent,
  type EditRequestInput,
} from '../../shared/protocol';
import { ApiError, base64, type CreatedEdit, type HistoryNode, type LayerloopApi } from './api';
import { captureActiveLayer, resultMask, type LayerCapture } from './capture';
import { MESSAGES, UserError, errorMessage } from './errors';
import type { HostDocument, PhotoshopHost } from './host';
import type { DocumentRecords } from './identity';
import { watchJob, type JobView, type JobWatch } from './job';
import { maskToRgba } from './pixels';
import { layerName, placeLayers, type PlaceItem } from './place';
import { downscaleRgba, encodePngStored } from './thumbnail';

/** the long side of a variation thumbnail, in pixels */
export const THUMBNAIL_SIDE = 96;

export type Locality = (typeof LOCALITIES)[number];

/** What the user set in the panel. */
export interface EditForm {
  instruction: string;
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

export const DEFAULT_FORM: EditForm = {
  instruction: '',
  locality: 'both',
  spread: 0,
  strength: 1,
  variations: 1,
  seed: null,
  steps: 20,
};

export type Phase =
  | 'idle'
  | 'capturing'
  | 'uploading'
  | 'queued'
  | 'running'
  | 'downloading'
  | 'placing'
  | 'picking'
  | 'done'
  | 'failed'
  | 'cancelled';

export interface VariationChoice {
  index: number;
  editId: string;
  sha256: string;
  /** data: URL once loaded */
  thumbnail: string | null;
  placed: boolean;
}

export interface HistoryItem {
  editId: string;
  kind: 'source' | 'edit';
  label: string;
  seed: number | null;
  variation: number | null;
  createdAt: string;
  /** 0 for roots, parent's depth + 1 otherwise */
  depth: number;
  /** the active layer shows this edit */
  current: boolean;
}

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
  /** the seed of the last job, when the server reported it */
  seed: number | null;
  variations: VariationChoice[];
  history: HistoryItem[];
  historyTitle: string | null;
  historyStatus: string | null;
}

export const INITIAL_STATE: PanelState = {
  phase: 'idle',
  busy: false,
  canCancel: false,
  status: 'Select a pixel layer, optionally make a selection, type an instruction and press Apply.',
  error: null,
  warning: null,
  queuePosition: null,
  progress: null,
  preview: null,
  seed: null,
  variations: [],
  history: [],
  historyTitle: null,
  historyStatus: null,
};

export interface ControllerDeps {
  host: PhotoshopHost;
  api: LayerloopApi;
  records: DocumentRecords;
  sleep: (ms: number) => Promise<void>;
  pollIntervalMs?: number;
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

class Cancelled extends Error {}

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
  private state: PanelState = INITIAL_STATE;
  private readonly listeners = new Set<(s: PanelState) => void>();
  /** hostDocumentKey -> server document id (cleared when the server changes) */
  private readonly documentIds = new Map<string, string>();
  private run: { cancelled: boolean; watch: JobWatch | null } | null = null;
  private pending: PendingResult | null = null;
  private historyNodes: HistoryNode[] = [];
  private historyDocumentId: number | null = null;

  constructor(private readonly deps: ControllerDeps) {}

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
    this.historyNodes = [];
    this.set({ history: [], historyTitle: null, historyStatus: null });
  }

  async testConnection(): Promise<void> {
    try {
      await this.deps.api.health();
      this.set({ error: null, status: 'Connected to the layerloop server.' });
    } catch (err) {
      this.set({ error: errorMessage(err) });
    }
  }

  // ------------------------------------------------------------------------------------ Apply

  async apply(form: EditForm): Promise<void> {
    if (this.state.busy) return;
    const run = { cancelled: false, watch: null as JobWatch | null };
    this.run = run;
    this.pending = null;
    this.set({
      ...INITIAL_STATE,
      history: this.state.history,
      historyTitle: this.state.historyTitle,
      historyStatus: this.state.historyStatus,
      phase: 'capturing',
      busy: true,
      canCancel: true,
      status: 'Reading the layer…',
    });
    const check = (): void => {
      if (run.cancelled) throw new Cancelled();
    };
    try {
      const instruction = validateInstruction(form.instruction);
      const options = optionsFromForm(form);
      const capture = await captureActiveLayer(this.deps.host);
      check();
      this.set({ phase: 'uploading', status: 'Uploading the layer…' });
      const documentId = await this.serverDocumentId(capture.document);
      const parentEditId = await this.deps.records.editForLayer(capture.document.id, capture.layer.id);
      const pixelsSha256 = await this.deps.api.uploadRgba(capture.rgba, capture.width, capture.height);
      check();
      const maskSha256 = capture.mask ? await this.deps.api.uploadRgba(maskToRgba(capture.mask), capture.width, capture.height) : null;
      check();
      const parent: EditParent = parentEditId
        ? { kind: 'edit', editId: parentEditId, pixelsSha256 }
        : { kind: 'source', imageSha256: pixelsSha256 };
      const request: EditRequestInput = { documentId, parent, regions: [{ instruction, maskSha256 }], options };
      const created = await this.createEdit(request, pixelsSha256);
      this.set({ phase: 'queued', seed: created.seed, queuePosition: created.position, status: queuedStatus(created.position) });
      const watch = watchJob(this.deps.api, created.jobId, {
        intervalMs: this.deps.pollIntervalMs ?? 500,
        sleep: this.deps.sleep,
        onView: (view) => {
          if (this.run === run) this.showJob(view, run.cancelled);
        },
      });
      run.watch = watch;
      if (run.cancelled) void watch.cancel().catch(() => undefined);
      const final = await watch.done;
      if (final.phase === 'failed') throw new UserError(final.message);
      if (final.phase === 'cancelled') throw new Cancelled();
      if (run.cancelled) {
        this.finish({ phase: 'cancelled', status: 'Cancelled, but the edit had already finished: it is in the history list.' });
      } else {
        this.deps.records.remember(capture.document.id, final.result.editIds, capture.bounds);
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
          editIds: final.result.editIds,
          sha256s: final.result.resultSha256s,
        };
        if (final.result.editIds.length === 1) await this.placePending([0]);
        else this.showVariations(this.pending);
      }
    } catch (err) {
      if (err instanceof Cancelled) this.finish({ phase: 'cancelled', status: 'Cancelled.' });
      else this.finish({ phase: 'failed', error: errorMessage(err), status: 'The edit did not complete.' });
    } finally {
      if (this.run === run) this.run = null;
    }
    await this.refreshHistory();
  }

  async cancel(): Promise<void> {
    const run = this.run;
    if (!run || run.cancelled) return;
    run.cancelled = true;
    this.set({ canCancel: false, status: 'Cancelling…' });
    if (!run.watch) return; // the upload steps check the flag
    try {
      await run.watch.cancel();
    } catch (err) {
      run.cancelled = false;
      this.set({ canCancel: true, error: `Could not cancel: ${errorMessage(err)}` });
    }
  }

  // ------------------------------------------------------------------------------------ variations

  /** Places the chosen variation(s) of the finished job, each as its own layer, in one undo step. */
  async placeVariations(indexes: number[] | 'all'): Promise<void> {
    const pending = this.pending;
    if (!pending || this.state.busy) return;
    const chosen = indexes === 'all' ? pending.editIds.map((_, i) => i) : indexes;
    if (chosen.length === 0) return;
    this.set({ busy: true, error: null });
    try {
      await this.placePending(chosen);
    } catch (err) {
      this.finish({ phase: 'picking', error: errorMessage(err), status: 'Pick a variation to place.' });
    }
    await this.refreshHistory();
  }

  /** Leaves the variation picker (the results stay in the history list). */
  dismissVariations(): void {
    if (this.state.busy) return;
    this.pending = null;
    this.set({ phase: 'idle', variations: [], status: INITIAL_STATE.status });
  }

  private showVariations(pending: PendingResult): void {
    const variations = pending.editIds.map((editId, index) => ({ index, editId, sha256: pending.sha256s[index], thumbnail: null, placed: false }));
    this.finish({ phase: 'picking', variations, status: `${variations.length} variations: pick one to place as a layer, or place all.` });
    void this.loadThumbnails(pending);
  }

  /** One variation at a time: a full-size image in memory at most, shrunk to a small PNG and dropped. */
  private async loadThumbnails(pending: PendingResult): Promise<void> {
    for (const [index, sha256] of pending.sha256s.entries()) {
      if (this.pending !== pending) return;
      try {
        const img = await this.deps.api.downloadRgba(sha256);
        const small = downscaleRgba(img.rgba, img.width, img.height, THUMBNAIL_SIDE);
        const thumbnail = `data:image/png;base64,${base64(encodePngStored(small.rgba, small.width, small.height))}`;
        if (this.pending !== pending) return;
        this.set({ variations: this.state.variations.map((x) => (x.index === index ? { ...x, thumbnail } : x)) });
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
    const names: string[] = [];
    let below = pending.sourceLayerId;
    let warning = this.state.warning;
    for (const i of indexes) {
      this.set({ phase: 'downloading', status: several ? `Downloading variation #${i + 1}…` : 'Downloading the result…', canCancel: false });
      const img = await this.deps.api.downloadRgba(pending.sha256s[i]);
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
      this.set({ phase: 'placing', status: several ? `Placing variation #${i + 1}…` : 'Placing the result…' });
      const placed = await placeLayers(this.deps.host, this.deps.records, pending.document, below, [item], historyName(pending.instruction));
      below = placed.layerIds[0];
      names.push(`"${item.name}"`);
      warning = placed.warning ?? warning;
      if (several) this.set({ variations: this.state.variations.map((v) => (v.index === i ? { ...v, placed: true } : v)) });
    }
    const status = `Placed ${names.join(', ')} above the source layer. Apply again to continue from ${names.length > 1 ? 'the top one' : 'it'}.`;
    if (several) {
      this.finish({ phase: 'picking', status, warning });
    } else {
      this.pending = null;
      this.finish({ phase: 'done', status, warning });
    }
  }

  // ------------------------------------------------------------------------------------ history

  /** Loads the active document's history from the server. */
  async refreshHistory(): Promise<void> {
    const document = this.deps.host.activeDocument();
    if (!document) {
      this.historyNodes = [];
      this.set({ history: [], historyTitle: null, historyStatus: MESSAGES.noDocument });
      return;
    }
    try {
      const identity = await this.deps.records.identify(document);
      const known = this.documentIds.get(identity.key);
      if (!identity.stored && !known) {
        this.historyNodes = [];
        this.historyDocumentId = document.id;
        this.set({ history: [], historyTitle: document.title, historyStatus: 'No layerloop edits in this document yet.' });
        return;
      }
      const documentId = known ?? (await this.serverDocumentId(document));
      const nodes = await this.deps.api.history(documentId);
      const current = await this.currentEditId(document);
      this.historyNodes = nodes;
      this.historyDocumentId = document.id;
      const history = historyItems(nodes, current);
      this.set({ history, historyTitle: document.title, historyStatus: history.length ? null : 'No layerloop edits in this document yet.' });
    } catch (err) {
      this.set({ historyTitle: document.title, historyStatus: `Could not load the history: ${errorMessage(err)}` });
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
    this.set({ busy: true, canCancel: false, error: null, warning: null, phase: 'downloading', status: 'Downloading the history entry…' });
    try {
      const document = this.deps.host.activeDocument();
      if (!document) throw new UserError(MESSAGES.noDocument);
      if (document.id !== this.historyDocumentId) throw new UserError('The history shown belongs to another document: press Refresh.');
      const img = await this.deps.api.downloadRgba(node.resultImageSha256);
      const active = this.deps.host.activeLayers(document.id);
      const above = active.length === 1 ? active[0] : null;
      const at = (await this.recordedPlace(document.id, node)) ??
        (above && above.bounds.right - above.bounds.left === img.width && above.bounds.bottom - above.bounds.top === img.height
          ? { left: above.bounds.left, top: above.bounds.top }
          : { left: 0, top: 0 });
      this.set({ phase: 'placing', status: 'Placing the history entry…' });
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
      this.finish({ phase: 'done', status: `Restored as "${name}". Type an instruction and press Apply to continue from it.`, warning: placed.warning });
    } catch (err) {
      this.finish({ phase: 'failed', error: errorMessage(err), status: 'Could not restore the history entry.' });
    }
    await this.refreshHistory();
  }

  // ------------------------------------------------------------------------------------ internals

  /** Where a history entry's image belongs: its own recorded place, or its nearest ancestor's (edits keep the size). */
  private async recordedPlace(documentId: number, node: HistoryNode): Promise<{ left: number; top: number } | null> {
    const seen = new Set<string>();
    for (let n: HistoryNode | undefined = node; n && !seen.has(n.id); n = this.historyNodes.find((x) => x.id === n!.parentId)) {
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

  private async serverDocumentId(document: HostDocument): Promise<string> {
    const identity = await this.deps.records.identify(document);
    const known = this.documentIds.get(identity.key);
    if (known) return known;
    const id = await this.deps.api.openDocument(identity.key);
    this.documentIds.set(identity.key, id);
    return id;
  }

  /** edits.create; a parent edit the server does not know (another server, a wiped store) falls back to the pixels. */
  private async createEdit(request: EditRequestInput, pixelsSha256: string): Promise<CreatedEdit> {
    try {
      return await this.deps.api.createEdit(request);
    } catch (err) {
      if (request.parent.kind === 'edit' && err instanceof ApiError && err.code === 'NOT_FOUND') {
        this.set({ warning: 'The server does not know the edit this layer came from: starting from the layer\'s pixels instead.' });
        return this.deps.api.createEdit({ ...request, parent: { kind: 'source', imageSha256: pixelsSha256 } });
      }
      throw err;
    }
  }

  private showJob(view: JobView, cancelling: boolean): void {
    switch (view.phase) {
      case 'queued':
        this.set({ phase: 'queued', queuePosition: view.position, status: cancelling ? 'Cancelling…' : queuedStatus(view.position) });
        break;
      case 'running':
        this.set({
          phase: 'running',
          queuePosition: null,
          progress: { step: view.step, totalSteps: view.totalSteps },
          preview: view.preview,
          status: cancelling || view.cancelRequested ? 'Cancelling…' : `Editing: step ${view.step} of ${view.totalSteps}`,
        });
        break;
      case 'succeeded': {
        // a fast job can finish between two polls, before any 'running' snapshot: the bar still ends full
        const totalSteps = this.state.progress?.totalSteps || 1;
        this.set({ preview: view.preview, progress: { step: totalSteps, totalSteps } });
        break;
      }
      default:
        break; // failed / cancelled: apply() reports them
    }
  }

  private finish(patch: Partial<PanelState>): void {
    this.set({ busy: false, canCancel: false, queuePosition: null, ...patch });
  }

  private set(patch: Partial<PanelState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener(this.state);
  }
}

function queuedStatus(position: number): string {
  return position === 0 ? 'Queued: starting next…' : `Queued: ${position} edit${position === 1 ? '' : 's'} ahead`;
}

function historyName(instruction: string): string {
  const text = instruction.length > 60 ? `${instruction.slice(0, 59)}…` : instruction;
  return `layerloop: ${text}`;
}

/** Newest first, each with its depth in the tree (parents come before children in `nodes`). */
export function historyItems(nodes: readonly HistoryNode[], currentEditId: string | null): HistoryItem[] {
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
      depth: d,
      current: n.id === currentEditId,
    });
  }
  return items.reverse();
}
