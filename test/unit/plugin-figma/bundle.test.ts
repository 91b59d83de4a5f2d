/**
 * The bundled main thread (what Figma runs as dist/code.js) in a bare JavaScript realm with a `figma`
 * global and nothing else a browser or Node would give: no DOM, no fetch, no crypto, no TextEncoder.
 * A smoke test of the real FigmaHost and the sandbox assumptions; the full browser e2e comes later.
 */
import { buildSync } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { fakePng } from './fake-figma';

const ROOT = path.resolve(__dirname, '../../..');

function bundle(): string {
  const out = buildSync({
    entryPoints: [path.join(ROOT, 'plugin-figma/src/code.ts')],
    bundle: true,
    format: 'iife',
    target: 'es2020',
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0].text;
}

interface Posted {
  type: string;
  [key: string]: unknown;
}

function fakeFigmaGlobal() {
  const posted: Posted[] = [];
  let uiListener: ((m: unknown) => void) | null = null;
  const rootData = new Map<string, string>();
  const page = { id: '0:1', type: 'PAGE', name: 'Page 1', parent: null as unknown, children: [] as unknown[], removed: false };
  const photo = {
    id: '1:2',
    type: 'RECTANGLE',
    name: 'Photo',
    visible: true,
    removed: false,
    parent: page,
    absoluteTransform: [
      [1, 0, 10],
      [0, 1, 20],
    ],
    absoluteBoundingBox: { x: 10, y: 20, width: 64, height: 48 },
    width: 64,
    height: 48,
    fills: [{ type: 'IMAGE', scaleMode: 'FILL', imageHash: 'h' }],
    exportSettings: null as unknown,
    getPluginData: () => '',
    exportAsync: async (settings: unknown) => {
      photo.exportSettings = settings;
      return fakePng(64, 48);
    },
  };
  page.children.push(photo);
  const figma = {
    showUI: (html: string, options: unknown) => posted.push({ type: '(showUI)', html, options }),
    ui: {
      postMessage: (m: Posted) => posted.push(m),
      on: (type: string, cb: (m: unknown) => void) => {
        if (type === 'message') uiListener = cb;
      },
    },
    on: () => {},
    currentPage: { selection: [photo] },
    root: { getPluginData: (k: string) => rootData.get(k) ?? '', setPluginData: (k: string, v: string) => rootData.set(k, v) },
    clientStorage: { getAsync: async () => undefined, setAsync: async () => {} },
    getNodeByIdAsync: async (id: string) => (id === page.id ? page : id === photo.id ? photo : null),
    notify: () => ({ cancel() {} }),
    commitUndo: () => {},
    viewport: { center: { x: 0, y: 0 } },
  };
  return { figma, posted, photo, send: (m: unknown) => uiListener!(m) };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('the bundled main thread', () => {
  it('runs without browser globals: opens the UI, handshakes, exports the selected layer', async () => {
    const { figma, posted, photo, send } = fakeFigmaGlobal();
    const context = vm.createContext({ figma, __html__: '<html>ui</html>', console, setTimeout, clearTimeout });
    vm.runInContext(bundle(), context);

    expect(posted).toEqual([{ type: '(showUI)', html: '<html>ui</html>', options: { width: 340, height: 640, title: 'layerloop', themeColors: true } }]);
    send({ type: 'ready', freshDocumentKey: '44444444-4444-4444-8444-444444444444' });
    await settle();
    expect(posted[1]).toMatchObject({ type: 'init', documentKey: '44444444-4444-4444-8444-444444444444', selection: { ready: true, mode: 'global' } });

    send({ type: 'prepare-edit', requestId: 'r1', continueFrom: null });
    await settle();
    expect(posted[2]).toMatchObject({ type: 'edit-inputs', requestId: 'r1', sourceNodeId: '1:2', parent: { kind: 'source' }, image: { width: 64, height: 48 }, mask: null });
    expect(photo.exportSettings).toEqual({ format: 'PNG', useAbsoluteBounds: true, colorProfile: 'SRGB', constraint: { type: 'SCALE', value: 1 } });

    send({ type: 'bogus' });
    await settle();
    expect(posted[3]).toMatchObject({ type: 'error' });
  });
});

describe('the panel markup', () => {
  it('has every element ui.ts looks up by id (a missing one would stop the panel at startup)', () => {
    const ui = fs.readFileSync(path.join(ROOT, 'plugin-figma/src/ui.ts'), 'utf8');
    const html = fs.readFileSync(path.join(ROOT, 'plugin-figma/src/ui.html'), 'utf8');
    const ids = new Set([...ui.matchAll(/\$(?:<\w+>)?\('([\w-]+)'\)/g)].map((m) => m[1]));
    for (const range of ['spread', 'strength']) ids.add(`${range}-out`); // looked up as `${id}-out`
    expect(ids.size).toBeGreaterThan(30);
    const missing = [...ids].filter((id) => !html.includes(`id="${id}"`));
    expect(missing).toEqual([]);
    expect(html).toContain('<!-- layerloop:script -->');
    expect(html).not.toMatch(/<script[^>]*\ssrc=|<link[^>]*\shref=/); // Figma loads the UI from a string: nothing can be linked
  });
});
