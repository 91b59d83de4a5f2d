/**
 * The panel (Figma's UI iframe: a browser page loaded from a data: URL, origin "null", no figma global).
 * Renders UiState (ui-state.ts), turns clicks into actions, talks to the server through LayerloopApi and
 * to the main thread through the Bridge (parent.postMessage({pluginMessage}, '*') both ways, as Figma does).
 */
import { createClient, encodeHistoryMarker, isActive, openHistory, parseHistoryMarker, progressFraction, signedInLabel, authorLabel, modelLabel, type FetchLike, type HistoryEntry, type LayerloopClient, type SessionAction } from '../../shared/client';
import { LOCALITIES, controlAttributes } from '../../shared/protocol';
import { Bridge } from './bridge';
import { DEFAULT_FORM, EditRun, FORM_CONTROLS, failureMessage, formProblem, type EditForm } from './edit-flow';
import { settingsSchema, type MainToUi, type Settings, type UiToMain } from './messages';
import { editEntries, INITIAL_STATE, phaseText, reduce, referenceToSend, type UiAction, type UiState } from './ui-state';

/** What to check when the server gets no answer, from Figma's frame (research/host_audit.md F2). */
const FIGMA_NETWORK_HINT =
  "the plugin's manifest.json must allow the server (networkAccess); Figma reaches another computer only over https (plain http is blocked as mixed content); in Chrome, allow figma.com's \"local network access\" prompt for a server on this computer or your network";

/** The browser's fetch as the shared client calls it. */
const browserFetch: FetchLike = (url, init) => fetch(url, { method: init.method, headers: init.headers, body: init.body as BodyInit | undefined, signal: init.signal as AbortSignal | undefined });

// ------------------------------------------------------------------------------------------ plumbing

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`ui.html has no #${id}`);
  return el as T;
}

function uuid(): string {
  if (typeof crypto.randomUUID === 'function') {
    try {
      return crypto.randomUUID();
    } catch {
      // not a secure context: build one from random bytes
    }
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Scale a PNG to exactly width x height (masks must match the image's size). */
async function resizePng(png: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  const bitmap = await createImageBitmap(new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('this panel cannot draw (no 2D canvas)');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, width, height);
  const blob = await new Promise<Blob>((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('could not encode the resized mask'))), 'image/png'),
  );
  return new Uint8Array(await blob.arrayBuffer());
}

// ---------------------------------------------------------------------------------------------- state

let state: UiState = INITIAL_STATE;
let api: LayerloopClient | null = null;
let run: EditRun | null = null;
let connecting: Promise<void> | null = null;
/** history thumbnails by sha256 (object URLs) */
const thumbnails = new Map<string, string>();

function dispatch(action: UiAction): void {
  state = reduce(state, action);
  render();
}

const session = (action: SessionAction): void => dispatch({ type: 'session', action });

const bridge = new Bridge(
  (message: UiToMain) => parent.postMessage({ pluginMessage: message }, '*'),
  (message) => onMainMessage(message),
  (reason) => console.warn(`layerloop: ${reason}`),
);

/** The line under the form: errors in red, confirmations in the normal colour. */
function showMessage(text: string, kind: 'error' | 'info' = 'error'): void {
  const el = $('message');
  el.textContent = text;
  el.className = kind;
}

function notify(message: string, error = false): void {
  bridge.send({ type: 'notify', message, error });
}

// ------------------------------------------------------------------------------------------ server

function documentId(): string | null {
  return state.connection.status === 'connected' ? state.connection.documentId : null;
}

/**
 * Connects and opens the file's history (shared/client's openHistory reads the file's marker against `me`).
 * `startNew`: the user answered Start to the question about another workspace's history.
 */
async function connectNow(settings: Settings, documentKey: string, startNew = false): Promise<void> {
  const client = createClient({ serverUrl: settings.serverUrl, token: settings.token, fetch: browserFetch, transport: 'sse', networkHint: FIGMA_NETWORK_HINT });
  api = client;
  dispatch({ type: 'connection', connection: { status: 'connecting' } });
  try {
    const health = await client.health();
    const me = await client.me();
    const user = signedInLabel(me);
    const opened = await openHistory(client, 'figma', documentKey, parseHistoryMarker(state.historyMarker), me, { startNew });
    if (api !== client) return; // settings changed meanwhile
    if (opened.kind === 'elsewhere') return dispatch({ type: 'connection', connection: { status: 'elsewhere', question: opened.question } });
    const model = modelLabel(health.model);
    // the user's label names their default workspace; another one (the file's, which they are a member of) is said
    const workspace = opened.workspace && me && opened.workspace.id !== me.defaultWorkspaceId ? opened.workspace.name : undefined;
    dispatch({ type: 'connection', connection: { status: 'connected', model, documentId: opened.documentId, readsReferences: health.model.readsReferences === true, ...(user ? { user } : {}), ...(workspace ? { workspace } : {}) } });
    const historyMarker = opened.marker ? encodeHistoryMarker(opened.marker) : null;
    if (historyMarker) dispatch({ type: 'history-marker', historyMarker });
    bridge.send({ type: 'document-opened', documentId: opened.documentId, historyMarker, record: startNew });
    void loadHistory();
  } catch (err) {
    if (api === client) dispatch({ type: 'connection', connection: { status: 'error', message: failureMessage(err) } });
  }
}

function connect(startNew = false): Promise<void> {
  if (!state.settings || !state.documentKey) return Promise.resolve();
  const attempt = connectNow(state.settings, state.documentKey, startNew).finally(() => {
    if (connecting === attempt) connecting = null;
  });
  connecting = attempt;
  return attempt;
}

/** Connects if need be: the client and the file's document, or null (the reason shown) when there is no history to edit in yet. */
async function connectedDocument(): Promise<{ client: LayerloopClient; id: string } | null> {
  // a pending question about another workspace's history is answered with its buttons, not by connecting again
  if (state.connection.status !== 'connected' && state.connection.status !== 'elsewhere') await (connecting ?? connect());
  const c = state.connection;
  if (api && c.status === 'connected') return { client: api, id: c.documentId };
  showMessage(c.status === 'error' ? c.message : c.status === 'elsewhere' ? 'Answer the question above first: Start a new history, or Cancel.' : 'Not connected to a server: open Settings.');
  return null;
}

async function loadHistory(): Promise<void> {
  const id = documentId();
  if (!api || !id) return;
  session({ type: 'history-loading' });
  try {
    session({ type: 'history-loaded', entries: await api.history(id) });
  } catch (err) {
    session({ type: 'history-failed', message: failureMessage(err) });
  }
}

// ------------------------------------------------------------------------------------------- actions

function numberValue(id: string, fallback: number): number {
  const raw = $<HTMLInputElement>(id).value.trim();
  return raw === '' ? fallback : Number(raw);
}

function readForm(): EditForm {
  const seedText = $<HTMLInputElement>('seed').value.trim();
  return {
    instruction: $<HTMLTextAreaElement>('instruction').value,
    maskText: $<HTMLInputElement>('mask-text').value,
    locality: $<HTMLSelectElement>('locality').value as EditForm['locality'],
    spread: numberValue('spread', DEFAULT_FORM.spread),
    strength: numberValue('strength', DEFAULT_FORM.strength),
    variations: numberValue('variations', DEFAULT_FORM.variations),
    seed: seedText === '' ? null : Number(seedText),
    steps: numberValue('steps', DEFAULT_FORM.steps),
  };
}

async function apply(): Promise<void> {
  if (isActive(state.session.edit)) return;
  showMessage('');
  const form = readForm();
  const problem = formProblem(form);
  if (problem) return showMessage(problem);
  const target = await connectedDocument();
  if (!target) return;
  const { client, id } = target;
  const pinned = state.session.continueFrom;
  const reference = referenceToSend(state);
  const current = new EditRun({ api: client, main: bridge, dispatch: session, resizePng });
  run = current;
  await current.run(form, id, pinned, reference?.image ?? null);
  if (run === current) run = null;
  const edit = state.session.edit;
  if (edit.name === 'done') {
    if (pinned) session({ type: 'continue-from', entry: null });
    // the reference went with this edit; the next one takes its own
    if (reference && state.reference === reference) dispatch({ type: 'reference', reference: null });
    notify(edit.layers === 1 ? 'layerloop: result placed above the layer' : `layerloop: ${edit.layers} variations placed`);
    void loadHistory();
  }
}

/** Shows the mask the "Where" words give on the selected layer (masks.preview): what Apply will change. */
async function previewMaskWords(): Promise<void> {
  const words = $<HTMLInputElement>('mask-text').value.trim();
  const image = $<HTMLImageElement>('mask-preview-image');
  if (words === '') return showMessage('Type where to edit in words first, e.g. "the circle".');
  const target = await connectedDocument();
  if (!target) return;
  const { client, id } = target;
  showMessage('');
  const button = $<HTMLButtonElement>('mask-preview');
  button.disabled = true;
  try {
    const preview = await new EditRun({ api: client, main: bridge, dispatch: session, resizePng }).previewMask(words, id, state.session.continueFrom);
    if (image.src.startsWith('blob:')) URL.revokeObjectURL(image.src);
    image.src = URL.createObjectURL(new Blob([preview.png as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
    image.hidden = false;
    showMessage(`"${words}" covers ${Math.round(preview.coverage * 100)} % of the layer: white is what Apply will change.`, 'info');
  } catch (err) {
    image.hidden = true;
    showMessage(failureMessage(err));
  } finally {
    button.disabled = false;
  }
}

/** "Use selection as reference": the selected layer's pixels become the reference image of the next Apply. */
async function useSelectionAsReference(): Promise<void> {
  showMessage('');
  try {
    const reference = await bridge.captureReference();
    dispatch({ type: 'reference', reference });
    showMessage(`"${reference.name}" is the reference image of the next Apply: now select the layer to edit.`, 'info');
  } catch (err) {
    showMessage(failureMessage(err));
  }
}

async function placeFromHistory(entry: HistoryEntry): Promise<void> {
  const id = documentId();
  if (!api || !id) return showMessage('Not connected to a server: open Settings.');
  showMessage('');
  try {
    const png = await api.getBlob(entry.resultImageSha256);
    await bridge.placeResults({ target: { kind: 'selection-or-viewport' }, instruction: entry.instruction ?? '', documentId: id, editIds: [entry.id], png: async () => png });
    showMessage(`Placed "${entry.instruction ?? 'edit'}" as a new layer. Select it and Apply to continue from it.`, 'info');
  } catch (err) {
    showMessage(failureMessage(err));
  }
}

function saveSettings(): void {
  const parsed = settingsSchema.safeParse({ serverUrl: $<HTMLInputElement>('server-url').value, token: $<HTMLInputElement>('token').value });
  const error = $('settings-error');
  if (!parsed.success) {
    error.textContent = parsed.error.issues[0]?.message ?? 'Check the settings.';
    error.hidden = false;
    return;
  }
  error.hidden = true;
  for (const url of thumbnails.values()) URL.revokeObjectURL(url);
  thumbnails.clear();
  bridge.send({ type: 'save-settings', settings: parsed.data });
  dispatch({ type: 'settings', settings: parsed.data });
  $('settings').hidden = true;
  void connect();
}

function onMainMessage(message: Extract<MainToUi, { type: 'init' | 'selection' | 'error' }>): void {
  switch (message.type) {
    case 'init':
      dispatch({ type: 'init', settings: message.settings, documentKey: message.documentKey, historyMarker: message.historyMarker, selection: message.selection });
      $<HTMLInputElement>('server-url').value = message.settings.serverUrl;
      $<HTMLInputElement>('token').value = message.settings.token;
      void connect();
      return;
    case 'selection':
      dispatch({ type: 'selection', selection: message.selection });
      return;
    case 'error':
      showMessage(message.message);
      return;
  }
}

// -------------------------------------------------------------------------------------------- render

const LOCALITY_HELP: Record<(typeof LOCALITIES)[number], string> = {
  both: 'Steers the edit into the mask and pins everything outside it (recommended).',
  blend: 'Pins everything outside the mask at every step; the inside is repainted.',
  guidance: 'Applies the instruction only inside the mask; softer transitions.',
};

function renderConnection(): void {
  const c = state.connection;
  const dot = $('conn-dot');
  dot.dataset.status = c.status;
  const url = state.settings?.serverUrl ?? '';
  $('conn-text').textContent =
    c.status === 'connected'
      ? `Connected: ${c.model}${c.user ? ` · signed in as ${c.user}` : ''}${c.workspace ? ` · history in ${c.workspace}` : ''}`
      : c.status === 'connecting'
        ? `Connecting to ${url}…`
        : c.status === 'error'
          ? c.message
          : c.status === 'elsewhere'
            ? 'Not connected to a history yet'
            : 'Not connected';
  $('conn-text').title = url;
  $('retry').hidden = c.status === 'connected' || c.status === 'connecting' || c.status === 'elsewhere';
  $('elsewhere').hidden = c.status !== 'elsewhere';
  $('elsewhere-text').textContent = c.status === 'elsewhere' ? c.question : '';
}

let renderedHistory: { history: UiState['session']['history']; pin: UiState['session']['continueFrom'] } | null = null;

function renderHistory(): void {
  const { history, continueFrom } = state.session;
  // progress events re-render the panel many times a second: rebuild the list only when it changed
  if (renderedHistory && renderedHistory.history === history && renderedHistory.pin === continueFrom) return;
  renderedHistory = { history, pin: continueFrom };
  const entries = editEntries(history.entries);
  const list = $('history-list');
  $('history-note').textContent =
    history.status === 'loading'
      ? 'Loading…'
      : history.status === 'error'
        ? (history.message ?? '')
        : history.status === 'ready' && entries.length === 0
          ? 'No edits in this file yet.'
          : '';
  list.replaceChildren(
    ...entries.slice(0, 50).map((entry) => {
      const item = document.createElement('li');
      const img = document.createElement('img');
      img.alt = '';
      const cached = thumbnails.get(entry.resultImageSha256);
      if (cached) img.src = cached;
      else void loadThumbnail(entry.resultImageSha256);
      img.dataset.sha = entry.resultImageSha256;
      const text = document.createElement('span');
      text.className = 'history-text';
      const when = new Date(entry.createdAt);
      text.textContent = `${entry.instruction ?? '(source)'}`;
      const author = authorLabel(entry);
      if (author) {
        const by = document.createElement('span');
        by.className = 'history-author';
        by.textContent = author;
        text.append(document.createElement('br'), by);
      }
      text.title = `${when.toLocaleString()} · seed ${entry.seed ?? '?'}${entry.variation ? ` · variation ${entry.variation + 1}` : ''}`;
      const place = document.createElement('button');
      place.textContent = 'Place';
      place.title = 'Add this state as a new layer (over the selected layer, or in the middle of the view)';
      place.onclick = () => void placeFromHistory(entry);
      const cont = document.createElement('button');
      cont.textContent = 'Continue';
      cont.title = 'The next Apply starts from this state (the result goes over the selected layer)';
      cont.onclick = () => session({ type: 'continue-from', entry: { editId: entry.id, instruction: entry.instruction ?? '', resultImageSha256: entry.resultImageSha256 } });
      if (continueFrom?.editId === entry.id) item.className = 'pinned';
      item.append(img, text, place, cont);
      return item;
    }),
  );
}

async function loadThumbnail(sha256: string): Promise<void> {
  if (!api || thumbnails.has(sha256)) return;
  thumbnails.set(sha256, ''); // loading
  try {
    const bytes = await api.getBlob(sha256);
    const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
    thumbnails.set(sha256, url);
    for (const img of document.querySelectorAll<HTMLImageElement>(`img[data-sha="${sha256}"]`)) img.src = url;
  } catch {
    thumbnails.delete(sha256);
  }
}

function render(): void {
  renderConnection();
  const sel = state.selection;
  $('selection-text').textContent = sel ? sel.text : 'Reading the selection…';
  $('selection').dataset.ready = String(sel?.ready ?? false);

  const pin = state.session.continueFrom;
  $('continue-chip').hidden = pin === null;
  const offered = state.connection.status === 'connected' && state.connection.readsReferences;
  $('reference-row').hidden = !offered;
  const ref = state.reference;
  $('reference-text').textContent = ref ? `Reference: "${ref.name}" (${ref.image.width}×${ref.image.height})` : 'No reference image (optional)';
  $('reference-remove').hidden = ref === null;
  $<HTMLButtonElement>('reference-use').disabled = isActive(state.session.edit);

  $('continue-text').textContent = pin ? `Continues from the history edit "${pin.instruction}"; the result goes over the selected layer.` : '';

  // words in "Where" are a mask too (the server derives it)
  const masked = sel?.mode === 'masked' || $<HTMLInputElement>('mask-text').value.trim() !== '';
  $('locality-group').classList.toggle('inactive', !masked);
  $('locality-note').textContent = masked
    ? LOCALITY_HELP[$<HTMLSelectElement>('locality').value as (typeof LOCALITIES)[number]]
    : 'Only matters with a mask: select a shape over the layer too, or say where in words.';

  const phase = state.session.edit;
  const active = isActive(phase);
  $<HTMLButtonElement>('apply').disabled = active || !(sel?.ready ?? false);
  const cancel = $<HTMLButtonElement>('cancel');
  cancel.hidden = !active;
  cancel.disabled = phase.name === 'placing' || ((phase.name === 'queued' || phase.name === 'running') && phase.cancelRequested);

  $('progress').hidden = phase.name === 'idle';
  $('dismiss').hidden = active;
  const fraction = progressFraction(phase);
  const fill = $('progress-fill');
  fill.classList.toggle('indeterminate', fraction === null && active);
  fill.style.width = fraction === null ? (active ? '30%' : '0') : `${Math.round(fraction * 100)}%`;
  const text = $('progress-text');
  text.textContent = phaseText(phase) + (state.session.warning ? ` ${state.session.warning}` : '');
  text.className = phase.name === 'failed' ? 'error' : '';
  const previews = $('previews');
  if (phase.name === 'running') {
    previews.replaceChildren(
      ...phase.previews.map((p) => {
        const img = document.createElement('img');
        img.src = p.dataUrl;
        img.alt = `variation ${p.variation + 1}, step ${p.step}`;
        img.title = img.alt;
        return img;
      }),
    );
  } else if (phase.name !== 'placing') {
    previews.replaceChildren(); // the result itself is in the file now
  }
  renderHistory();
}

// ---------------------------------------------------------------------------------------------- wire

function wire(): void {
  // ranges and defaults from the protocol (the one place they are declared)
  for (const key of ['spread', 'strength', 'variations', 'steps', 'seed'] as const) Object.assign($<HTMLInputElement>(FORM_CONTROLS[key]), controlAttributes(key));
  $<HTMLSelectElement>('locality').value = DEFAULT_FORM.locality;
  const showRange = (id: string) => ($(`${id}-out`).textContent = Number($<HTMLInputElement>(id).value).toFixed(2));
  for (const id of ['spread', 'strength']) {
    $(id).addEventListener('input', () => showRange(id));
    showRange(id);
  }
  $('locality').addEventListener('change', render);
  $('apply').addEventListener('click', () => void apply());
  $('cancel').addEventListener('click', () => run?.cancel());
  $('mask-preview').addEventListener('click', () => void previewMaskWords());
  $('mask-text').addEventListener('input', () => {
    $<HTMLImageElement>('mask-preview-image').hidden = true; // the preview was of other words
    render();
  });
  $('instruction').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.metaKey || e.ctrlKey)) {
      e.preventDefault();
      void apply();
    }
  });
  $('settings-toggle').addEventListener('click', () => ($('settings').hidden = !$('settings').hidden));
  $('settings-save').addEventListener('click', saveSettings);
  $('retry').addEventListener('click', () => void connect());
  $('elsewhere-start').addEventListener('click', () => void connect(true));
  $('elsewhere-cancel').addEventListener('click', () =>
    dispatch({ type: 'connection', connection: { status: 'error', message: 'No history was started: this file’s layerloop history is in another workspace. Retry asks again.' } }),
  );
  $('history-refresh').addEventListener('click', () => void loadHistory());
  $('reference-use').addEventListener('click', () => void useSelectionAsReference());
  $('reference-remove').addEventListener('click', () => dispatch({ type: 'reference', reference: null }));
  $('continue-clear').addEventListener('click', () => session({ type: 'continue-from', entry: null }));
  $('dismiss').addEventListener('click', () => session({ type: 'dismiss' }));

  window.addEventListener('message', (event: MessageEvent) => {
    const data: unknown = event.data;
    if (data && typeof data === 'object' && 'pluginMessage' in data) bridge.receive((data as { pluginMessage: unknown }).pluginMessage);
  });
  render();
  bridge.send({ type: 'ready', freshDocumentKey: uuid() });
}

wire();
