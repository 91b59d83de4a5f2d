/**
 * The UXP entry point: wires the real Photoshop host, fetch, storage and the panel together. The only file
 * that touches UXP globals (document, fetch, localStorage, crypto, setTimeout).
 *
 * In a browser harness, define `window.require` before this bundle loads so that require('photoshop') and
 * require('uxp') return fakes (esbuild leaves both as runtime requires).
 */
import { action, app, constants, core, imaging } from 'photoshop';
import { entrypoints, storage, xmp } from 'uxp';
import { createHttpApi, type FetchLike } from './api';
import { PanelController } from './controller';
import { DocumentRecords } from './identity';
import { mountPanel, type PanelDocument } from './panel';
import { UxpPhotoshopHost, type XmpModule } from './photoshop-host';
import { DEFAULT_SETTINGS, createSettingsStore, type SecureStorage, type Settings } from './settings';
import { uuidV4 } from './uuid';

const randomUuid = (): string => uuidV4(crypto.getRandomValues(new Uint8Array(16)) as Uint8Array);

/** requiredPermissions.network.domains of the manifest this bundle ships with (esbuild.config.mjs defines it) */
declare const LAYERLOOP_NETWORK_DOMAINS: readonly string[];

let settings: Settings = DEFAULT_SETTINGS;

// UXP's fetch typings want a Headers instance; at run time UXP's fetch takes a plain object like a browser's.
const uxpFetch: FetchLike = (url, init) => fetch(url, init as unknown as Parameters<typeof fetch>[1]);

// a named import reads require('uxp').xmp directly (a namespace import would copy only own properties);
// @adobe/cc-ext-uxp-types declares `xmp` several times over, so it is typed here by what the host uses
const host = new UxpPhotoshopHost({ action, app, constants, core, imaging }, xmp as unknown as Partial<XmpModule> | undefined);
const controller = new PanelController({
  host,
  api: createHttpApi(uxpFetch, () => settings),
  records: new DocumentRecords(host, randomUuid, randomUuid().slice(0, 8)),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  pollIntervalMs: 500,
});

let mounted = false;
function mount(): void {
  if (mounted) return;
  mounted = true;
  const doc = document as unknown as PanelDocument; // UXP's DOM typings differ from lib.dom's; the panel needs only a few calls
  if (!imaging) {
    const status = doc.getElementById('status');
    if (status) status.textContent = 'layerloop needs Photoshop 24.4 or later (the Imaging API): update Photoshop.';
    return;
  }
  const secure = (storage as unknown as { secureStorage?: SecureStorage }).secureStorage ?? null;
  mountPanel({
    document: doc,
    controller,
    settings: createSettingsStore(localStorage as unknown as { getItem(k: string): string | null; setItem(k: string, v: string): void }, secure),
    onSettings: (s) => {
      settings = s;
    },
    allowedServers: LAYERLOOP_NETWORK_DOMAINS,
  });
  // the panel's `show` fires only once (PS-57284): follow document switches to keep the history current
  controller.followDocuments();
}

// Manifest v5: one panel whose content is index.html's body; handlers must return within 300 ms, so mounting
// only binds elements and the first server call runs in the background.
// @adobe/cc-ext-uxp-types types `panels` as an array although UXP takes an object keyed by panel id.
entrypoints.setup({
  panels: {
    main: {
      create() {
        mount();
      },
      show() {
        mount();
        void controller.refreshHistory();
      },
    },
  },
} as unknown as Parameters<typeof entrypoints.setup>[0]);
