/**
 * The playground (GET /, built into dist/web/playground.html by esbuild.config.mjs): try layerloop from a
 * browser. Upload an image, paint a soft mask, type an instruction, watch progress and previews, browse the
 * document's history tree and continue from any node.
 *
 * One document per browser (host 'web', its key in localStorage), so a reload brings the history back. The
 * image shown is always a node to continue from: an upload (parent {kind:'source'}), or a history node.
 */
import { DEFAULT_EDIT_OPTIONS, controlAttributes, type EditOptionsInput, type EditParent, type JobEvent, type JobResult } from '../../shared/protocol';
import { createApi, errorMessage, type Api, type Health, type HistoryNode } from './api';
import { authorLabel, encodeHistoryMarker, modelLabel, openHistory, parseHistoryMarker, signedInLabel, type SignedIn } from '../../shared/client';
import { FORM_CONTROLS } from './form';
import { beginStroke, clearMask, createMask, fullRect, invertMask, isMaskEmpty, strokeTo, writeGrayscale, writeOverlay, type Mask, type Rect, type Stroke } from './mask';

const STORAGE_KEYS = {
  documentKey: 'layerloop.playground.documentKey',
  token: 'layerloop.playground.token',
  current: 'layerloop.playground.current',
  /** whose history the key opened (shared/client/history-marker.ts): another user in this browser is asked */
  historyMarker: 'layerloop.playground.historyMarker',
} as const;

const HEALTH_INTERVAL_MS = 5000;
/** the overlay's colour; the canvas's CSS opacity makes it translucent */
const MASK_COLOR = [255, 40, 90] as const;
/** how far a small image may be scaled up on screen */
const MAX_DISPLAY_SCALE = 8;

/** What the next Apply continues from. */
interface Current {
  /** the pixels shown (GET /v1/blobs/:sha) */
  sha256: string;
  parent: EditParent;
  /** the history node shown; null for an upload that no edit has used yet */
  nodeId: string | null;
}

interface RunningJob {
  jobId: string;
  /** stops following the job (not the job itself) */
  stop: AbortController;
}

// ------------------------------------------------------------------------------------------------ helpers

function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`playground.html: #${id} is missing or is not a <${type.name}>`);
  return el;
}

function stored(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null; // storage disabled: nothing survives a reload, everything else works
  }
}

function store(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // see stored()
  }
}

/** A new host document key (crypto.randomUUID needs a secure context; a LAN address over http is not one). */
function newDocumentKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `playground-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function parseCurrent(text: string | null): Current | null {
  if (!text) return null;
  try {
    const c = JSON.parse(text) as Partial<Current>;
    if (typeof c.sha256 === 'string' && c.parent && typeof c.parent === 'object' && (typeof c.nodeId === 'string' || c.nodeId === null)) return c as Current;
  } catch {
    // ignore a corrupt entry
  }
  return null;
}

/** How to continue from a history node (see edits.create's `parent`). */
function parentOf(node: HistoryNode, nodes: readonly HistoryNode[]): EditParent {
  if (node.kind === 'edit') return { kind: 'edit', editId: node.id };
  const parent = node.parentId ? nodes.find((n) => n.id === node.parentId) : undefined;
  // a re-synced source under an edit: continuing with the same pixels reuses this very node
  if (parent?.kind === 'edit') return { kind: 'edit', editId: parent.id, pixelsSha256: node.resultImageSha256 };
  return { kind: 'source', imageSha256: node.resultImageSha256 };
}

function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement || (target instanceof HTMLElement && target.isContentEditable);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

// ------------------------------------------------------------------------------------------------ the page

class Playground {
  private readonly ui = {
    status: byId('status', HTMLElement),
    statusText: byId('status-text', HTMLElement),
    docLabel: byId('doc-label', HTMLElement),
    newDoc: byId('new-doc', HTMLButtonElement),
    settings: byId('settings', HTMLDetailsElement),
    settingsForm: byId('settings-form', HTMLFormElement),
    token: byId('token', HTMLInputElement),
    error: byId('error', HTMLElement),
    errorText: byId('error-text', HTMLElement),
    errorClose: byId('error-close', HTMLButtonElement),
    toolPaint: byId('tool-paint', HTMLInputElement),
    toolErase: byId('tool-erase', HTMLInputElement),
    brushSize: byId('brush-size', HTMLInputElement),
    brushSizeOut: byId('brush-size-out', HTMLOutputElement),
    brushHardness: byId('brush-hardness', HTMLInputElement),
    brushHardnessOut: byId('brush-hardness-out', HTMLOutputElement),
    maskClear: byId('mask-clear', HTMLButtonElement),
    maskInvert: byId('mask-invert', HTMLButtonElement),
    maskShow: byId('mask-show', HTMLInputElement),
    file: byId('file', HTMLInputElement),
    stage: byId('stage', HTMLElement),
    drop: byId('drop', HTMLElement),
    wrap: byId('canvas-wrap', HTMLElement),
    image: byId('image', HTMLImageElement),
    mask: byId('mask', HTMLCanvasElement),
    cursor: byId('cursor', HTMLElement),
    maskHint: byId('mask-hint', HTMLElement),
    imageInfo: byId('image-info', HTMLElement),
    form: byId('edit-form', HTMLFormElement),
    instruction: byId('instruction', HTMLTextAreaElement),
    referenceRow: byId('reference-row', HTMLElement),
    referenceFile: byId('reference-file', HTMLInputElement),
    referenceInfo: byId('reference-info', HTMLElement),
    referenceClear: byId('reference-clear', HTMLButtonElement),
    maskText: byId('mask-text', HTMLInputElement),
    maskPreview: byId('mask-preview', HTMLButtonElement),
    advanced: byId('advanced', HTMLDetailsElement),
    locality: byId('opt-locality', HTMLSelectElement),
    spread: byId('opt-spread', HTMLInputElement),
    spreadOut: byId('opt-spread-out', HTMLOutputElement),
    strength: byId('opt-strength', HTMLInputElement),
    strengthOut: byId('opt-strength-out', HTMLOutputElement),
    variations: byId('opt-variations', HTMLInputElement),
    steps: byId('opt-steps', HTMLInputElement),
    seed: byId('opt-seed', HTMLInputElement),
    apply: byId('apply', HTMLButtonElement),
    cancel: byId('cancel', HTMLButtonElement),
    progressPanel: byId('progress-panel', HTMLElement),
    progress: byId('progress', HTMLProgressElement),
    progressText: byId('progress-text', HTMLElement),
    preview: byId('preview', HTMLImageElement),
    results: byId('results', HTMLUListElement),
    resultsEmpty: byId('results-empty', HTMLElement),
    history: byId('history', HTMLUListElement),
    historyEmpty: byId('history-empty', HTMLElement),
  };

  private readonly api: Api;
  private readonly overlay: CanvasRenderingContext2D;
  private token: string | null = stored(STORAGE_KEYS.token);
  private documentKey = stored(STORAGE_KEYS.documentKey) ?? newDocumentKey();
  private documentId: string | null = null;
  private nodes: HistoryNode[] = [];
  private current: Current | null = null;
  private imageSize: { width: number; height: number } | null = null;
  private mask: Mask | null = null;
  /** an uploaded reference image for models that read them (health.model.readsReferences) */
  private reference: { sha256: string; name: string } | null = null;
  private stroke: Stroke | null = null;
  /** the words whose previewed mask the overlay shows; null when it shows a painted one */
  private maskFromWords: string | null = null;
  private job: RunningJob | null = null;
  private lastResult: JobResult | null = null;
  private connected = false;
  /** documents.open in flight (the health check and the settings both ask for it) */
  private opening: Promise<void> | null = null;
  /** the user answered Cancel to starting a new history here: reconnecting must not ask again (a reload, Save in
   * the settings or New document do) */
  private declinedNewHistory = false;

  constructor() {
    this.api = createApi(location.origin, () => this.token);
    const ctx = this.ui.mask.getContext('2d');
    if (!ctx) throw new Error('this browser cannot draw on a <canvas>');
    this.overlay = ctx;
    store(STORAGE_KEYS.documentKey, this.documentKey);
    this.ui.token.value = this.token ?? '';
  }

  start(): void {
    this.bindSettings();
    this.bindUpload();
    this.bindReference();
    this.setOptionControls();
    this.bindMaskTools();
    this.bindMaskWords();
    this.bindEditForm();
    this.bindHistory();
    new ResizeObserver(() => this.layoutStage()).observe(this.ui.stage);
    void this.pollHealth();
    void this.openDocument();
  }

  // ---------------------------------------------------------------------------------------- status, errors

  private setStatus(state: 'ok' | 'warn' | 'bad', text: string): void {
    this.ui.status.dataset.state = state;
    this.ui.statusText.textContent = text;
  }

  private showError(message: string): void {
    this.ui.errorText.textContent = message;
    this.ui.error.hidden = false;
  }

  private clearError(): void {
    this.ui.error.hidden = true;
    this.ui.errorText.textContent = '';
  }

  private async pollHealth(): Promise<void> {
    await this.checkHealth();
    setTimeout(() => void this.pollHealth(), HEALTH_INTERVAL_MS);
  }

  private async checkHealth(): Promise<void> {
    try {
      const client = this.api.client();
      const health = await client.health();
      // who the token signs in as (401 without a valid one: then the status says to enter it)
      const me = health.authRequired && !this.token ? null : await client.me().catch(() => null);
      const wasConnected = this.connected;
      this.connected = true;
      this.showHealth(health, me);
      if (!wasConnected && !this.documentId && !this.declinedNewHistory) void this.openDocument();
    } catch (err) {
      this.connected = false;
      this.setStatus('bad', `Server unreachable: ${errorMessage(err)}`);
    }
  }

  private showHealth(health: Health, me: SignedIn | null): void {
    if (health.authRequired && !this.token) {
      this.setStatus('warn', 'Connected, but this server needs an access token: enter it under Settings');
      return;
    }
    const { queued, running } = health.queue;
    const busy = queued + running === 0 ? 'idle' : `${running} running, ${queued} queued`;
    const state = health.status === 'ok' ? 'ok' : 'warn';
    const label = health.status === 'ok' ? 'Connected' : health.status === 'degraded' ? `Cannot store edits (${health.store.problems.join('; ')})` : 'Shutting down';
    // only families that read reference images offer one (FLUX.2 klein)
    this.ui.referenceRow.hidden = !health.model.readsReferences;
    if (!health.model.readsReferences) this.setReference(null);
    const user = signedInLabel(me);
    const who = user ? ` · signed in as ${user}` : '';
    this.setStatus(state, `${label}${who} · ${modelLabel(health.model)} · ${busy}`);
  }

  private bindSettings(): void {
    this.ui.settingsForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.token = this.ui.token.value.trim() || null;
      store(STORAGE_KEYS.token, this.token);
      this.ui.settings.open = false;
      this.clearError();
      void this.checkHealth();
      void this.openDocument();
    });
    this.ui.errorClose.addEventListener('click', () => this.clearError());
  }

  // ---------------------------------------------------------------------------------------- document, history

  private openDocument(): Promise<void> {
    this.opening ??= this.doOpenDocument().finally(() => (this.opening = null));
    return this.opening;
  }

  /**
   * The browser's document, as the plugins open a file: a history marker naming a workspace the signed-in user
   * is not in (another person's token was used in this browser before) opens with create: false, and a new
   * history is started only if the user says so.
   */
  private async doOpenDocument(startNew = false): Promise<void> {
    try {
      const client = this.api.client();
      const me = await client.me();
      const opened = await openHistory(client, 'web', this.documentKey, parseHistoryMarker(stored(STORAGE_KEYS.historyMarker)), me, { startNew });
      if (opened.kind === 'elsewhere') {
        if (window.confirm(opened.question)) return await this.doOpenDocument(true);
        this.declinedNewHistory = true;
        this.showError(`No history was started: this browser's layerloop history belongs to workspace «${opened.recorded.name}». Reload to be asked again, or press New document.`);
        this.updateControls();
        return;
      }
      if (opened.marker) store(STORAGE_KEYS.historyMarker, encodeHistoryMarker(opened.marker));
      const documentId = opened.documentId;
      this.documentId = documentId;
      // the status line names the user's default workspace; another one (the marked one, a member's) is said here
      const elsewhere = opened.workspace && me && opened.workspace.id !== me.defaultWorkspaceId ? ` · ${opened.workspace.name}` : '';
      this.ui.docLabel.textContent = `Document ${documentId.slice(0, 8)}${elsewhere}`;
      this.ui.docLabel.title = `documentId ${documentId} (host 'web', key ${this.documentKey})`;
      await this.refreshHistory();
      if (!this.current) await this.restoreCurrent();
    } catch (err) {
      this.showError(`Could not open the document: ${errorMessage(err)}`);
      if (/token/i.test(errorMessage(err))) this.ui.settings.open = true;
    }
    this.updateControls();
  }

  /** After a reload: the node shown last, else the newest node of the history. */
  private async restoreCurrent(): Promise<void> {
    const saved = parseCurrent(stored(STORAGE_KEYS.current));
    const known = saved && (saved.nodeId === null || this.nodes.some((n) => n.id === saved.nodeId));
    // an upload no edit used may be gone (another data dir): then quietly fall back
    if (known && (await this.show(saved, { quiet: true }))) return;
    store(STORAGE_KEYS.current, null);
    const newest = this.nodes[this.nodes.length - 1];
    if (newest) await this.selectNode(newest.id);
  }

  private async refreshHistory(): Promise<void> {
    if (!this.documentId) return;
    this.nodes = await this.api.client().history(this.documentId);
    this.renderHistory();
  }

  private renderHistory(): void {
    const children = new Map<string | null, HistoryNode[]>();
    for (const node of this.nodes) {
      const siblings = children.get(node.parentId) ?? [];
      siblings.push(node);
      children.set(node.parentId, siblings);
    }
    const renderLevel = (parentId: string | null): HTMLLIElement[] =>
      (children.get(parentId) ?? []).map((node) => {
        const li = el('li');
        li.append(this.nodeButton(node));
        const below = renderLevel(node.id);
        if (below.length > 0) li.append(el('ul', {}, ...below));
        return li;
      });
    this.ui.history.replaceChildren(...renderLevel(null));
    this.ui.historyEmpty.hidden = this.nodes.length > 0;
  }

  private nodeButton(node: HistoryNode): HTMLButtonElement {
    const thumb = el('img', { alt: '', loading: 'lazy' });
    this.setImage(thumb, node.resultImageSha256);
    const label = node.kind === 'edit' ? (node.instruction ?? '') : node.parentId ? 'Painted pixels' : 'Source image';
    const when = node.kind === 'edit' ? `seed ${node.seed ?? '?'}${node.variation ? ` · variation ${node.variation + 1}` : ''} · ${new Date(node.createdAt).toLocaleTimeString()}` : new Date(node.createdAt).toLocaleString();
    const author = authorLabel(node);
    const meta = author ? `${when} · ${author}` : when;
    const button = el(
      'button',
      { type: 'button', title: `Continue from this ${node.kind === 'edit' ? 'edit' : 'image'}` },
      thumb,
      el('span', {}, el('span', { className: 'kind' }, node.kind), el('span', { className: 'label' }, label), el('span', { className: 'meta' }, meta)),
    );
    button.dataset.nodeId = node.id;
    button.dataset.kind = node.kind;
    button.dataset.parentId = node.parentId ?? '';
    if (this.current?.nodeId === node.id) button.setAttribute('aria-current', 'true');
    return button;
  }

  private bindHistory(): void {
    const pick = (e: Event) => {
      const button = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-node-id]');
      if (button?.dataset.nodeId) void this.selectNode(button.dataset.nodeId);
    };
    this.ui.history.addEventListener('click', pick);
    this.ui.results.addEventListener('click', pick);
    this.ui.newDoc.addEventListener('click', () => {
      if (this.job) return;
      this.documentKey = newDocumentKey();
      store(STORAGE_KEYS.documentKey, this.documentKey);
      store(STORAGE_KEYS.current, null);
      store(STORAGE_KEYS.historyMarker, null); // a new key: a history of the signed-in user's own
      this.documentId = null;
      this.nodes = [];
      this.current = null;
      this.imageSize = null;
      this.mask = null;
      this.lastResult = null;
      this.ui.wrap.hidden = true;
      this.ui.drop.hidden = false;
      this.ui.imageInfo.textContent = '';
      this.ui.progressPanel.hidden = true;
      this.renderHistory();
      this.renderResults();
      void this.openDocument();
    });
  }

  /** Shows a history node; the next Apply continues from it. */
  private async selectNode(nodeId: string): Promise<void> {
    const node = this.nodes.find((n) => n.id === nodeId);
    if (!node) return;
    await this.show({ sha256: node.resultImageSha256, parent: parentOf(node, this.nodes), nodeId: node.id });
  }

  // ---------------------------------------------------------------------------------------- the image

  private setImage(img: HTMLImageElement, sha256: string): void {
    this.api.imageUrl(sha256).then(
      (url) => (img.src = url),
      (err: unknown) => (img.title = `could not load the image: ${errorMessage(err)}`),
    );
  }

  /** Makes `current` the image on the stage; false if it cannot be shown. The mask is kept while the size stays the same. */
  private async show(current: Current, opts: { quiet?: boolean } = {}): Promise<boolean> {
    let loaded: HTMLImageElement;
    try {
      // decoded off-stage first: a failure leaves the image shown as it was
      loaded = el('img', { src: await this.api.imageUrl(current.sha256) });
      await loaded.decode();
    } catch (err) {
      if (!opts.quiet) this.showError(`Could not show the image: ${errorMessage(err)}`);
      return false;
    }
    this.ui.image.src = loaded.src;
    this.current = current;
    this.maskFromWords = null; // a preview was of the image before
    store(STORAGE_KEYS.current, JSON.stringify(current));
    const width = loaded.naturalWidth;
    const height = loaded.naturalHeight;
    if (!this.mask || this.mask.width !== width || this.mask.height !== height) {
      this.mask = createMask(width, height);
      this.ui.mask.width = width;
      this.ui.mask.height = height;
    }
    this.imageSize = { width, height };
    this.ui.drop.hidden = true;
    this.ui.wrap.hidden = false;
    this.ui.imageInfo.textContent = `${width}×${height}`;
    this.layoutStage();
    this.drawMask(fullRect(this.mask));
    for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-node-id]')) {
      if (b.dataset.nodeId === current.nodeId) b.setAttribute('aria-current', 'true');
      else b.removeAttribute('aria-current');
    }
    this.updateControls();
    return true;
  }

  /** Fits the image into the stage (scaling small images up, at most MAX_DISPLAY_SCALE times). */
  private layoutStage(): void {
    if (!this.imageSize) return;
    const { width, height } = this.imageSize;
    const box = this.ui.stage.getBoundingClientRect();
    const scale = Math.min((box.width - 32) / width, (box.height - 32) / height, MAX_DISPLAY_SCALE);
    this.ui.wrap.style.width = `${Math.max(1, Math.floor(width * scale))}px`;
    this.ui.wrap.style.height = `${Math.max(1, Math.floor(height * scale))}px`;
    this.updateCursorSize();
  }

  private bindUpload(): void {
    this.ui.file.addEventListener('change', () => {
      const file = this.ui.file.files?.[0];
      this.ui.file.value = ''; // choosing the same file again still fires 'change'
      if (file) void this.upload(file);
    });
    const stage = this.ui.stage;
    stage.addEventListener('dragover', (e) => {
      if (!e.dataTransfer?.types.includes('Files')) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      stage.classList.add('dragging');
    });
    stage.addEventListener('dragleave', (e) => {
      if (e.target === stage) stage.classList.remove('dragging');
    });
    stage.addEventListener('drop', (e) => {
      e.preventDefault();
      stage.classList.remove('dragging');
      const file = e.dataTransfer?.files[0];
      if (file) void this.upload(file);
    });
  }

  private bindReference(): void {
    this.ui.referenceFile.addEventListener('change', () => {
      const file = this.ui.referenceFile.files?.[0];
      this.ui.referenceFile.value = '';
      if (file) void this.uploadReference(file);
    });
    this.ui.referenceClear.addEventListener('click', () => this.setReference(null));
  }

  private setReference(reference: { sha256: string; name: string } | null): void {
    this.reference = reference;
    this.ui.referenceInfo.textContent = reference ? reference.name : 'none';
    this.ui.referenceClear.hidden = !reference;
  }

  private async uploadReference(file: File): Promise<void> {
    const type = file.type;
    if (type !== 'image/png' && type !== 'image/jpeg' && type !== 'image/webp') {
      this.showError(`${file.name} is ${file.type || 'not an image'}: choose a PNG, JPEG or WebP reference image`);
      return;
    }
    this.clearError();
    this.ui.referenceInfo.textContent = `Uploading ${file.name}…`;
    try {
      const blob = await this.api.upload(file, type);
      this.setReference({ sha256: blob.sha256, name: `${file.name} · ${blob.width}×${blob.height}` });
    } catch (err) {
      this.setReference(null);
      this.showError(`Reference upload failed: ${errorMessage(err)}`);
    }
  }

  private async upload(file: File): Promise<void> {
    const type = file.type;
    if (type !== 'image/png' && type !== 'image/jpeg' && type !== 'image/webp') {
      this.showError(`${file.name} is ${file.type || 'not an image'}: choose a PNG, JPEG or WebP image`);
      return;
    }
    this.clearError();
    this.ui.imageInfo.textContent = `Uploading ${file.name}…`;
    try {
      const blob = await this.api.upload(file, type);
      // the same pixels may already be a source of this document: show that node
      const known = this.nodes.find((n) => n.kind === 'source' && n.parentId === null && n.resultImageSha256 === blob.sha256);
      await this.show({ sha256: blob.sha256, parent: { kind: 'source', imageSha256: blob.sha256 }, nodeId: known?.id ?? null });
      this.ui.imageInfo.textContent = `${file.name} · ${blob.width}×${blob.height}`;
    } catch (err) {
      this.ui.imageInfo.textContent = '';
      this.showError(`Upload failed: ${errorMessage(err)}`);
    }
  }

  // ---------------------------------------------------------------------------------------- the mask

  private brushDiameterOnScreen(): number {
    return Number(this.ui.brushSize.value);
  }

  /** Screen pixels per image pixel. */
  private displayScale(): number {
    const rect = this.ui.mask.getBoundingClientRect();
    return this.imageSize && rect.width > 0 ? rect.width / this.imageSize.width : 1;
  }

  private updateCursorSize(): void {
    const d = this.brushDiameterOnScreen();
    this.ui.cursor.style.width = `${d}px`;
    this.ui.cursor.style.height = `${d}px`;
  }

  private drawMask(rect: Rect): void {
    if (!this.mask || rect.width === 0 || rect.height === 0) return;
    const pixels = this.overlay.createImageData(rect.width, rect.height);
    writeOverlay(this.mask, rect, MASK_COLOR, pixels.data);
    this.overlay.putImageData(pixels, rect.x, rect.y);
    this.updateMaskHint();
  }

  private updateMaskHint(): void {
    const words = this.ui.maskText.value.trim();
    if (words !== '') {
      this.ui.maskHint.textContent = this.maskFromWords === words
        ? `The mask "${words}" gives: this is what will change. Painting on it, Clear or Invert turns it into a painted mask.`
        : `Apply edits where "${words}" is (the server finds it); Preview shows it first.`;
      return;
    }
    const empty = !this.mask || isMaskEmpty(this.mask);
    this.ui.maskHint.textContent = empty
      ? 'Paint where the image may change. Without a mask the whole image is edited.'
      : 'Only the painted area changes (soft edges blend). Clear or invert the mask with the buttons above.';
  }

  private bindMaskTools(): void {
    const { ui } = this;
    const showValues = () => {
      ui.brushSizeOut.value = `${ui.brushSize.value} px`;
      ui.brushHardnessOut.value = `${ui.brushHardness.value}%`;
      ui.spreadOut.value = ui.spread.value;
      ui.strengthOut.value = ui.strength.value;
      this.updateCursorSize();
    };
    for (const input of [ui.brushSize, ui.brushHardness, ui.spread, ui.strength]) input.addEventListener('input', showValues);
    showValues();

    ui.maskClear.addEventListener('click', () => {
      if (!this.mask) return;
      this.forgetMaskWords();
      clearMask(this.mask);
      this.drawMask(fullRect(this.mask));
    });
    ui.maskInvert.addEventListener('click', () => {
      if (!this.mask) return;
      this.forgetMaskWords();
      invertMask(this.mask);
      this.drawMask(fullRect(this.mask));
    });
    const showMask = () => ui.wrap.classList.toggle('mask-hidden', !ui.maskShow.checked);
    ui.maskShow.addEventListener('change', showMask);

    const canvas = ui.mask;
    const toImage = (e: PointerEvent) => {
      const rect = canvas.getBoundingClientRect();
      return { x: ((e.clientX - rect.left) * canvas.width) / rect.width, y: ((e.clientY - rect.top) * canvas.height) / rect.height };
    };
    const moveCursor = (e: PointerEvent) => {
      const rect = canvas.getBoundingClientRect();
      ui.cursor.style.left = `${e.clientX - rect.left}px`;
      ui.cursor.style.top = `${e.clientY - rect.top}px`;
    };
    canvas.addEventListener('pointerdown', (e) => {
      if (!this.mask || e.button !== 0) return;
      e.preventDefault();
      this.forgetMaskWords(); // the painted mask rules from here on
      canvas.setPointerCapture(e.pointerId);
      if (!ui.maskShow.checked) {
        ui.maskShow.checked = true; // painting blind helps no one
        showMask();
      }
      this.stroke = beginStroke(this.mask, {
        radius: Math.max(0.5, this.brushDiameterOnScreen() / 2 / this.displayScale()),
        hardness: Number(ui.brushHardness.value) / 100,
        mode: ui.toolErase.checked ? 'erase' : 'paint',
      });
      const p = toImage(e);
      const dirty = strokeTo(this.stroke, p.x, p.y);
      if (dirty) this.drawMask(dirty);
    });
    canvas.addEventListener('pointermove', (e) => {
      moveCursor(e);
      ui.cursor.hidden = false;
      if (!this.stroke) return;
      // coalesced events: every sample the pointer reported since the last frame, for smooth fast strokes
      for (const sample of e.getCoalescedEvents?.() ?? [e]) {
        const p = toImage(sample);
        const dirty = strokeTo(this.stroke, p.x, p.y);
        if (dirty) this.drawMask(dirty);
      }
    });
    const end = () => {
      this.stroke = null;
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
    canvas.addEventListener('pointerleave', () => (ui.cursor.hidden = true));

    document.addEventListener('keydown', (e) => {
      if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      const size = Number(ui.brushSize.value);
      if (e.key === 'b' || e.key === 'B') ui.toolPaint.checked = true;
      else if (e.key === 'e' || e.key === 'E') ui.toolErase.checked = true;
      else if (e.key === '[') ui.brushSize.value = String(size - 8);
      else if (e.key === ']') ui.brushSize.value = String(size + 8);
      else if (e.key === 'm' || e.key === 'M') {
        ui.maskShow.checked = !ui.maskShow.checked;
        showMask();
      } else return;
      showValues();
    });
  }

  /** Words in the "Where" field and a painted mask are two answers to one question: painting drops the words. */
  private forgetMaskWords(): void {
    if (this.ui.maskText.value === '') return;
    this.ui.maskText.value = '';
    this.maskFromWords = null;
    this.updateMaskHint();
  }

  private bindMaskWords(): void {
    const { ui } = this;
    ui.maskPreview.addEventListener('click', () => void this.previewMaskWords());
    ui.maskText.addEventListener('input', () => {
      this.maskFromWords = null;
      this.updateMaskHint();
    });
    ui.maskText.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        void this.previewMaskWords();
      }
    });
  }

  /** masks.preview: the mask the words give on the current image, shown as the overlay (what will change). */
  private async previewMaskWords(): Promise<void> {
    const words = this.ui.maskText.value.trim();
    const current = this.current;
    if (!current || !this.documentId || !this.mask || words === '') {
      if (words === '') this.showError('Type what to edit in "Where", e.g. the circle, then Preview.');
      return;
    }
    this.clearError();
    this.ui.maskPreview.disabled = true;
    try {
      const client = this.api.client();
      const preview = await client.previewMask({ documentId: this.documentId, parent: current.parent, maskText: words });
      const image = await client.getRgba(preview.maskSha256);
      const mask = this.mask;
      if (this.current !== current || image.width !== mask.width || image.height !== mask.height) return; // the image changed meanwhile
      for (let i = 0; i < mask.data.length; i++) mask.data[i] = image.rgba[i * 4];
      this.maskFromWords = words;
      if (!this.ui.maskShow.checked) {
        this.ui.maskShow.checked = true;
        this.ui.wrap.classList.remove('mask-hidden');
      }
      this.drawMask(fullRect(mask));
    } catch (err) {
      this.showError(errorMessage(err));
    } finally {
      this.ui.maskPreview.disabled = false;
    }
  }

  /** The mask as a grayscale PNG of the image's size (white = may change), uploaded; null when nothing is painted. */
  private async uploadMask(): Promise<string | null> {
    const mask = this.mask;
    if (!mask || isMaskEmpty(mask)) return null;
    const canvas = el('canvas', { width: mask.width, height: mask.height });
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('this browser cannot draw on a <canvas>');
    const pixels = ctx.createImageData(mask.width, mask.height);
    writeGrayscale(mask, pixels.data);
    ctx.putImageData(pixels, 0, 0);
    const png = await new Promise<Blob>((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the browser could not encode the mask as PNG'))), 'image/png'),
    );
    return (await this.api.upload(png, 'image/png')).sha256;
  }

  // ---------------------------------------------------------------------------------------- edits

  private updateControls(): void {
    const busy = this.job !== null;
    this.ui.apply.disabled = busy || !this.current || !this.documentId;
    this.ui.cancel.disabled = !busy;
    this.ui.newDoc.disabled = busy;
  }

  private options(): EditOptionsInput {
    const { ui } = this;
    const steps = ui.steps.valueAsNumber;
    const seed = ui.seed.value.trim() === '' ? undefined : ui.seed.valueAsNumber;
    return {
      locality: ui.locality.value as EditOptionsInput['locality'],
      spread: ui.spread.valueAsNumber,
      strength: ui.strength.valueAsNumber,
      variations: ui.variations.valueAsNumber,
      steps,
      seed,
      // about six previews per edit, whatever the step count
      previewEvery: Number.isFinite(steps) ? Math.max(1, Math.ceil(steps / 6)) : undefined,
    };
  }

  /** Ranges and defaults from the protocol (the one place they are declared). */
  private setOptionControls(): void {
    for (const key of ['spread', 'strength', 'variations', 'steps', 'seed'] as const) Object.assign(byId(FORM_CONTROLS[key], HTMLInputElement), controlAttributes(key));
    byId(FORM_CONTROLS.locality, HTMLSelectElement).value = DEFAULT_EDIT_OPTIONS.locality;
  }

  private bindEditForm(): void {
    const { ui } = this;
    ui.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.apply();
    });
    // an invalid option inside the closed "Advanced" section could not be pointed at
    ui.form.addEventListener(
      'invalid',
      (e) => {
        if (e.target instanceof Node && ui.advanced.contains(e.target)) ui.advanced.open = true;
      },
      true,
    );
    ui.instruction.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        ui.form.requestSubmit();
      }
    });
    ui.cancel.addEventListener('click', () => void this.cancel());
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.job && !ui.settings.open) void this.cancel();
    });
  }

  private async apply(): Promise<void> {
    const current = this.current;
    if (!current || !this.documentId || this.job) return;
    this.clearError();
    const instruction = this.ui.instruction.value.trim();
    this.job = { jobId: '', stop: new AbortController() }; // claims the slot while the request is in flight
    this.updateControls();
    this.startProgress('Sending…');
    try {
      // words in "Where" go as maskText: the server derives the mask (the one Preview showed)
      const maskText = this.ui.maskText.value.trim();
      const region = maskText !== '' ? { instruction, maskText } : { instruction, maskSha256: await this.uploadMask() };
      const created = await this.api.client().createEdit({
        documentId: this.documentId,
        parent: current.parent,
        regions: [region],
        references: this.reference ? [this.reference.sha256] : [],
        options: this.options(),
      });
      this.ui.progressText.textContent = `Queued (seed ${created.seed})…`;
      this.watch(created.jobId, created.seed);
    } catch (err) {
      this.job = null;
      this.updateControls();
      this.ui.progressText.textContent = 'Not started.';
      this.showError(errorMessage(err));
    }
  }

  private startProgress(text: string): void {
    this.ui.progressPanel.hidden = false;
    this.ui.progress.max = 1;
    this.ui.progress.value = 0;
    this.ui.progress.removeAttribute('value'); // indeterminate until the first step
    this.ui.progressText.textContent = text;
    this.ui.preview.hidden = true;
    this.ui.preview.removeAttribute('src');
  }

  /** Follows the job (over SSE, or by polling when the stream fails: the shared client decides). */
  private watch(jobId: string, seed: number): void {
    const started = performance.now();
    const stop = new AbortController();
    this.job = { jobId, stop };
    this.updateControls();
    void (async () => {
      try {
        for await (const event of this.api.client().follow(jobId, stop.signal)) this.onJobEvent(event, seed, started);
      } catch (err) {
        if (stop.signal.aborted) return;
        this.finishJob();
        this.ui.progressText.textContent = 'Lost the progress.';
        this.showError(`Lost the job's progress: ${errorMessage(err)}`);
      }
    })();
  }

  private onJobEvent(event: JobEvent, seed: number, started: number): void {
    const { ui } = this;
    switch (event.type) {
      case 'queued':
        ui.progressText.textContent = event.position === 0 ? `Queued, next to start (seed ${seed})` : `Queued: ${event.position} ahead (seed ${seed})`;
        break;
      case 'started':
        ui.progressText.textContent = `Started (seed ${seed})`;
        break;
      case 'progress':
      case 'preview':
        ui.progress.max = event.totalSteps;
        ui.progress.value = event.step;
        ui.progressText.textContent = `Step ${event.step} of ${event.totalSteps} · seed ${seed}`;
        if (event.type === 'preview') {
          ui.preview.src = event.dataUrl;
          ui.preview.hidden = false;
        }
        break;
      case 'succeeded':
        ui.progress.max = 1;
        ui.progress.value = 1;
        ui.progressText.textContent = `Done in ${((performance.now() - started) / 1000).toFixed(1)} s · seed ${seed}`;
        this.finishJob();
        void this.onSucceeded(event);
        break;
      case 'failed':
        ui.progressText.textContent = 'Failed.';
        this.finishJob();
        this.showError(`The edit failed: ${event.message}`);
        break;
      case 'cancelled':
        ui.progressText.textContent = 'Cancelled.';
        this.finishJob();
        break;
    }
  }

  private finishJob(): void {
    this.job?.stop.abort();
    this.job = null;
    this.updateControls();
    void this.checkHealth(); // the queue line, at once rather than at the next poll
  }

  private async onSucceeded(result: JobResult): Promise<void> {
    this.lastResult = result;
    try {
      await this.refreshHistory();
    } catch (err) {
      this.showError(`Could not load the history: ${errorMessage(err)}`);
    }
    this.renderResults();
    // continue from the first variation; the others are a click away
    const first = result.editIds[0];
    if (first) await this.selectNode(first);
  }

  private renderResults(): void {
    const result = this.lastResult;
    const items = (result?.editIds ?? []).map((editId, i) => {
      const node = this.nodes.find((n) => n.id === editId);
      const thumb = el('img', { alt: '' });
      this.setImage(thumb, result!.resultSha256s[i]);
      const button = el('button', { type: 'button', title: 'Continue from this result' }, thumb, `Variation ${i + 1}${node?.seed != null ? ` · seed ${node.seed}` : ''}`);
      button.dataset.nodeId = editId;
      button.dataset.kind = 'edit';
      if (this.current?.nodeId === editId) button.setAttribute('aria-current', 'true');
      return el('li', {}, button);
    });
    this.ui.results.replaceChildren(...items);
    this.ui.resultsEmpty.hidden = items.length > 0;
  }

  private async cancel(): Promise<void> {
    const job = this.job;
    if (!job || !job.jobId) return;
    this.ui.cancel.disabled = true;
    this.ui.progressText.textContent = 'Cancelling…';
    try {
      const { cancelled, state } = await this.api.client().cancelJob(job.jobId);
      if (!cancelled && state !== 'cancelled') this.ui.progressText.textContent = `Could not cancel: the job already ${state}.`;
    } catch (err) {
      this.ui.cancel.disabled = false;
      this.showError(`Could not cancel: ${errorMessage(err)}`);
    }
  }
}

try {
  new Playground().start();
} catch (err) {
  document.body.prepend(el('p', { className: 'error', role: 'alert' }, `The playground could not start: ${errorMessage(err)}`));
}
