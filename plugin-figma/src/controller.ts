/**
 * The main thread's logic: answers the UI's messages with the host (FigmaHost) and keeps the UI told what
 * the selection will do. No network here: the UI iframe talks to the server (DESIGN 7), the main thread
 * captures and places.
 */
import { imageSizeProblem } from '../../shared/protocol';
import { pngSize } from './geometry';
import { DOCUMENT_KEYS, PluginError, SETTINGS_KEY, readResultTag, type FigmaHost, type HostNode } from './host';
import { exportMask } from './mask';
import {
  DEFAULT_SETTINGS,
  mainToUiSchema,
  parseMessage,
  settingsSchema,
  uiToMainSchema,
  type MainToUi,
  type PngImage,
  type Settings,
  type UiToMainOf,
} from './messages';
import { abandonPlacement, beginPlacement, finishPlacement, placeOne, type Placement } from './place';
import { planSelection, sourceProblem, summarize, type SelectedNode, type SelectionPlan } from './selection';

export const UI_SIZE = { width: 340, height: 640, title: 'layerloop' } as const;

/** A message for the user from any error: ours are written for them, Figma's get context. */
export function userMessage(err: unknown, context: string): string {
  if (err instanceof PluginError) return err.message;
  const detail = err instanceof Error ? err.message : String(err);
  return `${context}: ${detail}`;
}

export const REFERENCE_MESSAGES = {
  none: 'Select the layer to use as the reference image, then press "Use selection as reference".',
  several: (n: number) => `${n} layers are selected: select only the layer to use as the reference image.`,
} as const;

export class MainController {
  private started = false;
  /** this file's hostDocumentKey: from figma.root, or the UI's fresh uuid until the first write */
  private documentKey: string | null = null;
  private documentId: string | null = null;
  /** the history marker to keep in the file (what it holds, or what the UI opened since) */
  private historyMarker: string | null = null;
  private selectionSeq = 0;
  /** results being placed one message at a time, by placementId */
  private readonly placements = new Map<string, Placement>();

  constructor(private readonly host: FigmaHost) {}

  /** Open the panel and listen. Nothing is sent to the UI before it says `ready`. */
  start(): void {
    // a mask frame or export copy left by a plugin closed mid-export (its `finally` never ran)
    this.host.removeTemporaryNodes();
    this.host.onClose(() => {
      this.host.removeTemporaryNodes();
      for (const placement of this.placements.values()) abandonPlacement(this.host, placement);
    });
    this.host.showUi(UI_SIZE);
    this.host.onUiMessage((raw) => void this.handle(raw));
    this.host.onSelectionChange(() => void this.pushSelection());
  }

  /** Handle one message from the UI (returned promise: for tests). */
  async handle(raw: unknown): Promise<void> {
    const parsed = parseMessage(uiToMainSchema, raw, 'UI');
    if (!parsed.ok) {
      this.post({ type: 'error', message: parsed.error });
      return;
    }
    const message = parsed.message;
    switch (message.type) {
      case 'ready':
        return this.onReady(message);
      case 'save-settings':
        return this.onSaveSettings(message);
      case 'document-opened':
        this.documentId = message.documentId;
        if (message.historyMarker !== null) this.historyMarker = message.historyMarker;
        // the user chose to start a new history in their workspace: the file says so from now on
        if (message.record) this.persistDocumentData();
        return this.pushSelection();
      case 'prepare-edit':
        return this.onPrepareEdit(message);
      case 'place-result':
        return this.onPlaceResult(message);
      case 'capture-reference':
        return this.onCaptureReference(message);
      case 'place-abandon': {
        const placement = this.placements.get(message.placementId);
        this.placements.delete(message.placementId);
        if (placement) abandonPlacement(this.host, placement);
        return;
      }
      case 'notify':
        this.host.notify(message.message, { error: message.error });
        return;
    }
  }

  private post(message: MainToUi): void {
    // validate outgoing messages too: a bug here should show up in tests, not as a silent UI
    const checked = mainToUiSchema.safeParse(message);
    if (!checked.success) throw new Error(`bug: invalid ${message.type} message for the UI: ${checked.error.issues[0]?.message}`);
    this.host.postToUi(message);
  }

  private async onReady(message: UiToMainOf<'ready'>): Promise<void> {
    this.documentKey = this.host.getDocumentData(DOCUMENT_KEYS.hostDocumentKey) || this.documentKey || message.freshDocumentKey;
    this.documentId = this.host.getDocumentData(DOCUMENT_KEYS.documentId) || this.documentId;
    this.historyMarker = this.host.getDocumentData(DOCUMENT_KEYS.historyMarker) || this.historyMarker;
    const settings = await this.loadSettings();
    const plan = await this.plan();
    this.started = true;
    this.post({ type: 'init', settings, documentKey: this.documentKey, documentId: this.documentId, historyMarker: this.historyMarker, selection: summarize(plan) });
  }

  private async loadSettings(): Promise<Settings> {
    try {
      const parsed = settingsSchema.safeParse(await this.host.loadSetting(SETTINGS_KEY));
      return parsed.success ? parsed.data : DEFAULT_SETTINGS;
    } catch {
      return DEFAULT_SETTINGS;
    }
  }

  private async onSaveSettings(message: UiToMainOf<'save-settings'>): Promise<void> {
    try {
      await this.host.saveSetting(SETTINGS_KEY, message.settings);
    } catch (err) {
      this.post({ type: 'error', message: userMessage(err, 'Could not save the settings on this computer') });
    }
  }

  /**
   * The key, document id and history marker go into figma.root only when the plugin writes to the file anyway
   * (placing a result) or the user chose to start a new history in it, so opening the panel never adds an undo
   * step or marks the file changed. Undoing a placement can undo these writes too; they are written again with
   * the next one.
   */
  private persistDocumentData(): void {
    const write = (key: string, value: string | null) => {
      if (value && this.host.getDocumentData(key) !== value) this.host.setDocumentData(key, value);
    };
    write(DOCUMENT_KEYS.hostDocumentKey, this.documentKey);
    write(DOCUMENT_KEYS.documentId, this.documentId);
    write(DOCUMENT_KEYS.historyMarker, this.historyMarker);
  }

  private async zPath(node: HostNode): Promise<number[]> {
    const path: number[] = [];
    let current: HostNode | null = node;
    while (current && current.parentId !== null && current.type !== 'PAGE') {
      path.unshift(current.index);
      current = await this.host.node(current.parentId);
    }
    return path;
  }

  /** What the current selection will do. */
  async plan(): Promise<SelectionPlan> {
    const nodes = this.host.selection();
    const selected: SelectedNode[] = [];
    for (const node of nodes) {
      // stacking order only decides between two shapes
      selected.push({ node, tag: readResultTag(this.host, node.id), zPath: nodes.length === 2 ? await this.zPath(node) : [] });
    }
    return planSelection(selected, this.documentId);
  }

  async pushSelection(): Promise<void> {
    if (!this.started) return;
    const seq = ++this.selectionSeq;
    const plan = await this.plan();
    if (seq !== this.selectionSeq) return; // a newer selection change is being answered
    this.post({ type: 'selection', selection: summarize(plan) });
  }

  private async exportSource(source: HostNode): Promise<PngImage> {
    let png: Uint8Array;
    try {
      // the result gets the source's opacity and blend mode; the pixels must not carry them as well
      const ownLookOnly = source.opacity !== 1 || (source.blendMode !== 'NORMAL' && source.blendMode !== 'PASS_THROUGH');
      png = await this.host.exportPng(source.id, { ownLookOnly });
    } catch (err) {
      throw new PluginError(userMessage(err, `Figma could not export "${source.name}"`));
    }
    const size = pngSize(png);
    if (!size) throw new PluginError(`Figma exported "${source.name}" in an unexpected format (not a PNG).`);
    const problem = imageSizeProblem(size.width, size.height);
    if (problem) throw new PluginError(`"${source.name}" cannot be edited: ${problem}.`);
    return { png, ...size };
  }

  private async onPrepareEdit(message: UiToMainOf<'prepare-edit'>): Promise<void> {
    const { requestId } = message;
    try {
      const plan = await this.plan();
      if (!plan.ok) throw new PluginError(plan.message);
      const pinned = message.continueFrom;
      const parent = pinned ? { kind: 'edit' as const, editId: pinned.editId } : plan.parent;
      // a pinned history edit brings its own pixels; a result layer sends its current ones (painted on?)
      const image = pinned ? null : await this.exportSource(plan.source);
      let mask: PngImage | null = null;
      if (plan.mask) {
        try {
          mask = await exportMask(this.host, plan.source, plan.mask);
        } catch (err) {
          throw new PluginError(userMessage(err, `Could not export the mask "${plan.mask.name}"`));
        }
      }
      this.post({ type: 'edit-inputs', requestId, sourceNodeId: plan.source.id, sourceName: plan.source.name, parent, image, mask });
    } catch (err) {
      this.post({ type: 'request-failed', requestId, message: userMessage(err, 'Could not prepare the edit') });
    }
  }

  /** The one selected layer's pixels, as the reference image of the next Apply. */
  private async onCaptureReference(message: UiToMainOf<'capture-reference'>): Promise<void> {
    const { requestId } = message;
    try {
      const nodes = this.host.selection();
      if (nodes.length !== 1) throw new PluginError(nodes.length === 0 ? REFERENCE_MESSAGES.none : REFERENCE_MESSAGES.several(nodes.length));
      const node = nodes[0];
      const problem = sourceProblem(node);
      if (problem) throw new PluginError(problem);
      const image = await this.exportSource(node);
      this.post({ type: 'reference-captured', requestId, nodeId: node.id, name: node.name, image });
    } catch (err) {
      this.post({ type: 'request-failed', requestId, message: userMessage(err, 'Could not use the selection as the reference') });
    }
  }

  private async onPlaceResult(message: UiToMainOf<'place-result'>): Promise<void> {
    const { requestId, placementId, index, count } = message;
    let placement = this.placements.get(placementId);
    try {
      if (index === 0) {
        this.persistDocumentData();
        placement = await beginPlacement(this.host, message.target, message.png, count, message.instruction, message.documentId);
        this.placements.set(placementId, placement);
      }
      if (!placement || placement.count !== count) throw new Error(`result ${index + 1} of ${count} arrived for a placement that is not under way`);
      const nodeId = placeOne(this.host, placement, index, { editId: message.editId, png: message.png });
      if (index < count - 1) return this.post({ type: 'placed', requestId, nodeIds: [nodeId] });
      this.placements.delete(placementId);
      this.post({ type: 'placed', requestId, nodeIds: finishPlacement(this.host, placement) });
    } catch (err) {
      this.placements.delete(placementId);
      if (placement) abandonPlacement(this.host, placement);
      this.post({ type: 'request-failed', requestId, message: userMessage(err, 'Could not place the result') });
    }
  }
}
