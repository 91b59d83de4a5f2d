/**
 * Connection settings: the server URL (plain local storage) and the token (UXP secure storage). The stores are
 * injected: index.ts passes UXP's localStorage and secureStorage; tests and the browser harness pass fakes.
 */
import { normalizeServerUrl } from '../../shared/client';

export const DEFAULT_SERVER_URL = 'http://localhost:7860';

export interface Settings {
  serverUrl: string;
  /** bearer token; '' = none (a loopback server needs none) */
  token: string;
}

export const DEFAULT_SETTINGS: Settings = { serverUrl: DEFAULT_SERVER_URL, token: '' };

const URL_KEY = 'layerloop.serverUrl';
const TOKEN_KEY = 'layerloop.token';

/** window.localStorage's shape */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** require('uxp').storage.secureStorage's shape (getItem resolves to bytes; empty/absent when unset) */
export interface SecureStorage {
  getItem(key: string): Promise<Uint8Array | null | undefined>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

export interface SettingsStore {
  load(): Promise<Settings>;
  save(settings: Settings): Promise<void>;
}

export function createSettingsStore(local: KeyValueStorage, secure: SecureStorage | null): SettingsStore {
  return {
    async load() {
      const serverUrl = local.getItem(URL_KEY) || DEFAULT_SETTINGS.serverUrl;
      let token: string;
      try {
        token = secure ? utf8Decode((await secure.getItem(TOKEN_KEY)) ?? new Uint8Array(0)) : (local.getItem(TOKEN_KEY) ?? '');
      } catch {
        token = ''; // secure storage "can be lost": ask again
      }
      return { serverUrl, token };
    },
    async save(settings) {
      local.setItem(URL_KEY, normalizeServerUrl(settings.serverUrl));
      const token = settings.token.trim();
      if (secure) {
        if (token) await secure.setItem(TOKEN_KEY, token);
        else await secure.removeItem(TOKEN_KEY).catch(() => undefined);
      } else {
        local.setItem(TOKEN_KEY, token); // no secure storage (e.g. a test harness)
      }
    },
  };
}

/** UTF-8 bytes -> string (UXP does not document TextDecoder). Invalid sequences become U+FFFD. */
export function utf8Decode(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i];
    let cp = 0xfffd;
    let len = 1;
    if (b < 0x80) cp = b;
    else if (b >= 0xc2 && b < 0xe0) len = 2;
    else if (b >= 0xe0 && b < 0xf0) len = 3;
    else if (b >= 0xf0 && b < 0xf5) len = 4;
    if (len > 1) {
      let v = b & (0xff >> (len + 1));
      let ok = i + len <= bytes.length;
      for (let k = 1; ok && k < len; k++) {
        const c = bytes[i + k];
        if ((c & 0xc0) !== 0x80) ok = false;
        else v = (v << 6) | (c & 0x3f);
      }
      if (ok && v >= [0, 0, 0x80, 0x800, 0x10000][len] && v <= 0x10ffff && !(v >= 0xd800 && v <= 0xdfff)) cp = v;
      else len = 1;
    }
    out += String.fromCodePoint(cp);
    i += len;
  }
  return out;
}
