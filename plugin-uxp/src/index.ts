/**
 * The UXP entry point: wires the real Photoshop host, fetch, storage and the panel together. The only file
 * that touches UXP globals (document, fetch, localStorage, crypto, setTimeout).
 *
 * In a browser harness, define `window.require` before this bundle loads so that require('photoshop') and
 * require('uxp') return fakes (esbuild leaves both as runtime requires).
 */
import { action, app, constants, core, imaging } from 'photoshop';
import { entrypoints, storage, xmp } from 'uxp';
import { createClient, type FetchLike, type LayerloopClient, type ResponseLike } from '../../shared/client';
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
// No signal is passed: the panel cancels jobs on the server, and follows them by polling.
const uxpFetch: FetchLike = async (url, init) =>
  (await fetch(url, { method: init.method, headers: init.headers, body: init.body } as unknown as Parameters<typeof fetch>[1])) as unknown as ResponseLike;

/** What to check when the server gets no answer (research/host_audit.md P6). */
const NETWORK_HINT = "Photoshop lets the plugin reach only the servers its manifest lists (this build: see Settings)";

/** The client for the current settings (a new one when they change). */
let current: { settings: Settings; client: LayerloopClient } | null = null;
function currentClient(): LayerloopClient {
  if (current?.settings !== settings) {
    current = { settings, client: createClient({ serverUrl: settings.serverUrl, token: settings.token, fetch: uxpFetch, transport: 'poll', networkHint: NETWORK_HINT }) };
  }
  return current.client;
}

// a named import reads require('uxp').xmp directly (a namespace import would copy only own properties);
// @adobe/cc-ext-uxp-types declares `xmp` several times over, so it is typed here by what the host uses
const host = new UxpPhotoshopHost({ action, app, constants, core, imaging }, xmp as unknown as Partial<XmpModule> | undefined);
const controller = new PanelController({
  host,
  client: currentClient,
  records: new DocumentRecords(host, randomUuid, randomUuid().slice(0, 8)),
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
