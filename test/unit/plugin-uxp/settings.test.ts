import { DEFAULT_SETTINGS, createSettingsStore, utf8Decode, type SecureStorage } from '../../../plugin-uxp/src/settings';
import { uuidV4 } from '../../../plugin-uxp/src/uuid';

function memoryLocal() {
  const m = new Map<string, string>();
  return { m, getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) };
}

function memorySecure(): SecureStorage & { m: Map<string, Uint8Array> } {
  const m = new Map<string, Uint8Array>();
  return {
    m,
    getItem: async (k) => m.get(k) ?? new Uint8Array(0),
    setItem: async (k, v) => void m.set(k, new TextEncoder().encode(v)),
    removeItem: async (k) => void m.delete(k),
  };
}

describe('settings', () => {
  it('defaults to the local server with no token', async () => {
    expect(await createSettingsStore(memoryLocal(), memorySecure()).load()).toEqual(DEFAULT_SETTINGS);
    expect(DEFAULT_SETTINGS.serverUrl).toBe('http://localhost:7860');
  });

  it('keeps the URL in local storage and the token in secure storage', async () => {
    const local = memoryLocal();
    const secure = memorySecure();
    const store = createSettingsStore(local, secure);
    await store.save({ serverUrl: 'https://edit.example.com/ ', token: ' tøken ' });
    expect([...local.m.values()]).toEqual(['https://edit.example.com']);
    expect(await store.load()).toEqual({ serverUrl: 'https://edit.example.com', token: 'tøken' });
    await store.save({ serverUrl: 'https://edit.example.com', token: '' });
    expect(secure.m.size).toBe(0);
  });

  it('treats lost secure storage as no token', async () => {
    const secure = memorySecure();
    secure.getItem = async () => {
      throw new Error('keychain unavailable');
    };
    expect((await createSettingsStore(memoryLocal(), secure).load()).token).toBe('');
  });

  it('decodes UTF-8 like TextDecoder', () => {
    for (const s of ['', 'abc', 'tøken', '€uro', '𝄞 clef', 'mixed ✓ text']) expect(utf8Decode(new TextEncoder().encode(s))).toBe(s);
    expect(utf8Decode(new Uint8Array([0x61, 0xff, 0x62]))).toBe('a\ufffdb'); // invalid bytes never throw
  });
});

it('makes RFC 4122 v4 uuids from random bytes', () => {
  const id = uuidV4(new Uint8Array(16).fill(255));
  expect(id).toBe('ffffffff-ffff-4fff-bfff-ffffffffffff');
  expect(uuidV4(new Uint8Array(16))).toMatch(/^00000000-0000-4000-8000-000000000000$/);
  expect(() => uuidV4(new Uint8Array(15))).toThrow(/16 random bytes/);
});
