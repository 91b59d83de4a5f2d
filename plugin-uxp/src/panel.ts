/**
 * The panel's DOM: binds index.html's elements to the PanelController and renders its state. Plain HTML
 * elements only (textarea, select, input, button, img, div), which UXP renders natively and Chromium runs
 * as-is, so the same bundle and page run in the browser harness with fake `photoshop`/`uxp` modules.
 *
 * Written against a minimal structural DOM (PanelDocument) rather than UXP's or lib.dom's typings, which
 * disagree; index.ts passes the real `document`.
 */
import { LOCALITIES, controlAttributes } from '../../shared/protocol';
import { DEFAULT_FORM, FORM_CONTROLS, type EditForm, type Locality, type PanelController, type PanelState } from './controller';
import { errorMessage } from './errors';
import type { Settings, SettingsStore } from './settings';

export interface PanelElement {
  value: string;
  disabled: boolean;
  textContent: string | null;
  className: string;
  style: { display: string; width: string; paddingLeft: string };
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  addEventListener(type: string, listener: (event: unknown) => void): void;
  appendChild(child: PanelElement): unknown;
}

export interface PanelDocument {
  getElementById(id: string): PanelElement | null;
  createElement(tagName: string): PanelElement;
}

/** Every element id the panel needs (index.html must define them all). */
export const PANEL_IDS = [
  'instruction',
  'apply',
  'cancel',
  'locality',
  'spread',
  'spread-value',
  'strength',
  'strength-value',
  'variations',
  'advanced-toggle',
  'advanced',
  'seed',
  'steps',
  'status',
  'error',
  'warning',
  'progress',
  'progress-bar',
  'preview',
  'picker',
  'variation-list',
  'place-all',
  'dismiss-variations',
  'history-title',
  'history-status',
  'history-list',
  'history-refresh',
  'settings-toggle',
  'settings',
  'server-url',
  'token',
  'allowed-servers',
  'settings-save',
  'mask-text',
  'mask-preview',
  'mask-preview-image',
  'mask-preview-caption',
  'reference-row',
  'reference-use',
  'reference-name',
  'reference-remove',
  'server-line',
  'elsewhere',
  'elsewhere-text',
  'elsewhere-start',
  'elsewhere-cancel',
] as const;
export type PanelId = (typeof PANEL_IDS)[number];

export interface MountOptions {
  document: PanelDocument;
  controller: PanelController;
  settings: SettingsStore;
  /** called after settings are loaded or saved, so the API client uses them */
  onSettings: (settings: Settings) => void;
  /** the servers this build's manifest lets the panel reach (requiredPermissions.network.domains) */
  allowedServers: readonly string[];
}

/**
 * Why the panel cannot reach this server, or null: UXP (manifest v5) grants network access only to the domains
 * the manifest lists, and an installed plugin's manifest cannot be edited.
 */
export function serverNotAllowed(serverUrl: string, allowed: readonly string[]): string | null {
  const origin = /^(https?:\/\/[^/?#\s]+)/i.exec(serverUrl.trim())?.[1]?.toLowerCase();
  if (!origin) return `"${serverUrl.trim()}" is not an http:// or https:// address (e.g. http://localhost:7860).`;
  const ok = allowed.some((a) => a.toLowerCase().replace(/\/+$/, '') === origin);
  return ok
    ? null
    : `This build of the plugin can only reach ${allowed.join(', ')} (Photoshop allows no other address). Ask for a build for ${origin} (npm run package -- --server ${origin}) and install that.`;
}

export function mountPanel(o: MountOptions): void {
  const el = {} as Record<PanelId, PanelElement>;
  const missing: string[] = [];
  for (const id of PANEL_IDS) {
    const e = o.document.getElementById(id);
    if (e) el[id] = e;
    else missing.push(id);
  }
  if (missing.length) throw new Error(`index.html lacks element(s) ${missing.join(', ')}`);
  const { controller } = o;
  const show = (e: PanelElement, visible: boolean): void => {
    e.style.display = visible ? '' : 'none';
  };

  // ---------------------------------------------------------------------------------- form

  // ranges and defaults from the protocol (the one place they are declared); the sliders count in percent
  for (const [key, scale] of [['spread', 100], ['strength', 100], ['variations', 1], ['steps', 1]] as const) {
    const { min, max, step, value } = controlAttributes(key, scale);
    const input = el[FORM_CONTROLS[key]];
    input.setAttribute('min', min);
    input.setAttribute('max', max);
    input.setAttribute('step', step);
    input.value = value;
  }
  el.locality.setAttribute('value', DEFAULT_FORM.locality); // UXP shows a <select>'s value only when set as an attribute
  const showSliders = (): void => {
    el['spread-value'].textContent = (Number(el.spread.value) / 100).toFixed(2);
    el['strength-value'].textContent = (Number(el.strength.value) / 100).toFixed(2);
  };
  el.spread.addEventListener('input', showSliders);
  el.strength.addEventListener('input', showSliders);
  showSliders();

  const readForm = (): EditForm => {
    const locality = (LOCALITIES as readonly string[]).includes(el.locality.value) ? (el.locality.value as Locality) : DEFAULT_FORM.locality;
    const seed = el.seed.value.trim();
    return {
      instruction: el.instruction.value,
      maskText: el['mask-text'].value,
      locality,
      spread: Number(el.spread.value) / 100,
      strength: Number(el.strength.value) / 100,
      variations: Number(el.variations.value),
      seed: seed === '' ? null : Number(seed),
      steps: Number(el.steps.value),
    };
  };

  el.apply.addEventListener('click', () => void controller.apply(readForm()));
  el.instruction.addEventListener('keydown', (event) => {
    const e = event as { key?: string; metaKey?: boolean; ctrlKey?: boolean };
    if (e.key === 'Enter' && (e.metaKey || e.ctrlKey)) void controller.apply(readForm());
  });
  el.cancel.addEventListener('click', () => void controller.cancel());
  el['mask-preview'].addEventListener('click', () => void controller.previewMask(el['mask-text'].value));
  el['mask-text'].addEventListener('input', () => controller.clearMaskPreview());

  let advancedOpen = false;
  show(el.advanced, false);
  el['advanced-toggle'].addEventListener('click', () => {
    advancedOpen = !advancedOpen;
    show(el.advanced, advancedOpen);
    el['advanced-toggle'].textContent = advancedOpen ? 'Advanced ▾' : 'Advanced ▸';
  });

  // ---------------------------------------------------------------------------------- variations, history

  el['place-all'].addEventListener('click', () => void controller.placeVariations('all'));
  el['dismiss-variations'].addEventListener('click', () => controller.dismissVariations());
  el['history-refresh'].addEventListener('click', () => void controller.refreshHistory());
  el['elsewhere-start'].addEventListener('click', () => void controller.startNewHistory());
  el['elsewhere-cancel'].addEventListener('click', () => controller.cancelNewHistory());
  el['reference-use'].addEventListener('click', () => void controller.useLayerAsReference());
  el['reference-remove'].addEventListener('click', () => controller.removeReference());

  // ---------------------------------------------------------------------------------- settings

  el['allowed-servers'].textContent = o.allowedServers.join(', ');
  // UXP cannot read a password field's value on macOS: Adobe's advice is to show it as text while it has the
  // focus; its value is taken before it turns back into a password field
  let token = '';
  el.token.addEventListener('focus', () => el.token.setAttribute('type', 'text'));
  el.token.addEventListener('blur', () => {
    token = el.token.value;
    el.token.setAttribute('type', 'password');
  });
  let settingsOpen = false;
  show(el.settings, false);
  el['settings-toggle'].addEventListener('click', () => {
    settingsOpen = !settingsOpen;
    show(el.settings, settingsOpen);
  });
  o.settings.load().then(
    (s) => {
      el['server-url'].value = s.serverUrl;
      el.token.value = s.token;
      token = s.token;
      o.onSettings(s);
      void controller.refreshHistory();
      // the model line and the reference controls; an unreachable server says so at Apply
      controller.loadServerInfo().catch(() => undefined);
    },
    (err: unknown) => {
      el.error.textContent = `Could not load the settings: ${errorMessage(err)}`;
      show(el.error, true);
    },
  );
  el['settings-save'].addEventListener('click', () => {
    const s: Settings = { serverUrl: el['server-url'].value, token };
    const refused = serverNotAllowed(s.serverUrl, o.allowedServers);
    if (refused) {
      el.error.textContent = refused;
      show(el.error, true);
      return;
    }
    o.settings.save(s).then(
      () => {
        o.onSettings(s);
        controller.serverChanged();
        void controller.testConnection().then(() => controller.refreshHistory());
      },
      (err: unknown) => {
        el.error.textContent = `Could not save the settings: ${errorMessage(err)}`;
        show(el.error, true);
      },
    );
  });

  // ---------------------------------------------------------------------------------- render

  let shownVariations: PanelState['variations'] | null = null;
  let shownHistory: PanelState['history'] | null = null;
  let shownHistoryBusy: boolean | null = null;

  const render = (s: PanelState): void => {
    el.apply.disabled = s.busy;
    el.cancel.disabled = !s.canCancel;
    show(el.cancel, s.busy);
    el.status.textContent = s.status + (s.seed !== null && (s.phase === 'done' || s.phase === 'picking') ? ` (seed ${s.seed})` : '');
    el.error.textContent = s.error ?? '';
    show(el.error, s.error !== null);
    el.warning.textContent = s.warning ?? '';
    show(el.warning, s.warning !== null);

    const p = s.progress;
    show(el.progress, s.busy && (s.phase === 'queued' || s.phase === 'running' || s.phase === 'placing'));
    el['progress-bar'].style.width = p && p.totalSteps > 0 ? `${Math.round((100 * p.step) / p.totalSteps)}%` : '0%';
    if (s.preview) el.preview.setAttribute('src', s.preview);
    else el.preview.removeAttribute('src');
    show(el.preview, s.preview !== null);
    el['mask-preview'].disabled = s.busy;
    if (s.maskPreview) el['mask-preview-image'].setAttribute('src', s.maskPreview.dataUrl);
    else el['mask-preview-image'].removeAttribute('src');
    show(el['mask-preview-image'], s.maskPreview !== null);
    el['mask-preview-caption'].textContent = s.maskPreview?.caption ?? '';
    show(el['mask-preview-caption'], s.maskPreview !== null);
    show(el['reference-row'], s.referencesOffered);
    el['reference-use'].disabled = s.busy;
    el['reference-name'].textContent = s.reference ? `Reference: ${s.reference.layerName} (${s.reference.width}×${s.reference.height})` : 'No reference image';
    show(el['reference-remove'], s.reference !== null);
    el['server-line'].textContent = s.model ? `Model: ${s.model}` : '';

    show(el.picker, s.variations.length > 0);
    el['place-all'].disabled = s.busy;
    el['dismiss-variations'].disabled = s.busy;
    if (s.variations !== shownVariations || shownHistoryBusy !== s.busy) renderVariations(s);
    if (s.history !== shownHistory || shownHistoryBusy !== s.busy) renderHistory(s);
    shownHistoryBusy = s.busy;
    el['history-title'].textContent = s.historyTitle ? `History of ${s.historyTitle}${s.historyWorkspace ? ` in ${s.historyWorkspace}` : ''}` : 'History';
    el['elsewhere-text'].textContent = s.elsewhere ?? '';
    show(el.elsewhere, s.elsewhere !== null);
    el['elsewhere-start'].disabled = s.busy;
    el['history-status'].textContent = s.historyStatus ?? '';
    show(el['history-status'], s.historyStatus !== null);
  };

  const renderVariations = (s: PanelState): void => {
    shownVariations = s.variations;
    const list = el['variation-list'];
    list.textContent = '';
    for (const v of s.variations) {
      const item = o.document.createElement('div');
      item.className = 'variation';
      const img = o.document.createElement('img');
      img.className = 'thumb';
      if (v.thumbnail) img.setAttribute('src', v.thumbnail);
      const button = o.document.createElement('button');
      button.textContent = v.placed ? `#${v.index + 1} placed` : `Place #${v.index + 1}`;
      button.disabled = s.busy;
      button.addEventListener('click', () => void controller.placeVariations([v.index]));
      item.appendChild(img);
      item.appendChild(button);
      list.appendChild(item);
    }
  };

  const renderHistory = (s: PanelState): void => {
    shownHistory = s.history;
    const list = el['history-list'];
    list.textContent = '';
    for (const h of s.history) {
      const row = o.document.createElement('div');
      row.className = h.current ? 'history-item current' : 'history-item';
      row.style.paddingLeft = `${Math.min(h.depth, 8) * 10}px`;
      const label = o.document.createElement('span');
      label.className = 'history-label';
      const meta = [h.variation !== null && h.kind === 'edit' ? `#${h.variation + 1}` : '', h.seed !== null ? `seed ${h.seed}` : '', h.author].filter(Boolean).join(', ');
      label.textContent = `${h.current ? '● ' : ''}${h.label}${meta ? ` (${meta})` : ''}`;
      const button = o.document.createElement('button');
      button.textContent = 'Continue from here';
      button.disabled = s.busy;
      button.addEventListener('click', () => void controller.continueFrom(h.editId));
      row.appendChild(label);
      row.appendChild(button);
      list.appendChild(row);
    }
  };

  controller.subscribe(render);
  render(controller.getState());
}
