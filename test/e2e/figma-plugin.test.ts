/**
 * The Figma plugin end to end (issue #5): the built main thread (plugin-figma/dist/code.js) runs in a
 * harness page against a fake `figma` global (test/e2e/figma-harness/fake-figma.js) backed by real PNG bytes,
 * and the built panel (plugin-figma/dist/ui.html) runs in an iframe from a data: URL, the two bridged by
 * postMessage exactly as Figma does; headless Chromium, driven with playwright-core, against the real server
 * process with the tiny model.
 *
 * Scenario: the shapes image plus an ellipse over its circle selected, "make the circle blue", Apply -> a new
 * image layer at the source's bounds whose pixels outside the mask equal the source and whose circle moved
 * towards blue; then the result layer selected, "make the square green" -> the server's history has the
 * second edit as the child of the first. Screenshots of the panel go to test-artifacts/figma-progress.png
 * (during the edit) and test-artifacts/figma-done.png (git-ignored).
 *
 * Needs Debian's Chromium at /usr/bin/chromium; without it the suite is skipped with a message, except in
 * CI (process.env.CI set), where it fails (as test/e2e/playground.test.ts).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Frame, Page } from 'playwright-core';
import { decodeImage, type RgbaImage } from '../../server/imaging/image';
import { ARTIFACTS, describeInBrowser, launchBrowser, read, waitUntil as waitFor, type Browser } from '../support/browser';
import { parseHistoryMarker } from '../../shared/client';
import { foreignMarkerSetup, usersCli } from '../support/isolation';
import { makeClient, ROOT, startServer, tempDataDir, type Client, type ServerProcess } from '../support/server';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'shapes-128.png');
const CODE_JS = path.join(ROOT, 'plugin-figma', 'dist', 'code.js');
const UI_HTML = path.join(ROOT, 'plugin-figma', 'dist', 'ui.html');
const FAKE_FIGMA = path.join(__dirname, 'figma-harness', 'fake-figma.js');
/** where the harness puts the source layer on the page (fake-figma.js) */
const SOURCE_BOUNDS = { x: 100, y: 50, width: 128, height: 128 };

interface Layer {
  id: string;
  type: string;
  name: string;
  visible: boolean;
  bounds: { x: number; y: number; width: number; height: number };
  fills: { type: string; imageHash?: string }[];
  sharedPluginData: Record<string, string>;
}

/** The page's glue: the fake figma global with PNGs encoded by a canvas, and base64 views for the test. */
const GLUE = `(async () => {
  const toBase64 = (bytes) => { let s = ''; for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)); return btoa(s); };
  const encodePng = async (rgba, width, height) => {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
    return new Uint8Array(await blob.arrayBuffer());
  };
  const { figma, hooks } = createFakeFigma({
    sourcePng: Uint8Array.from(atob(window.__SOURCE_PNG_B64), (c) => c.charCodeAt(0)),
    clientStorage: window.__CLIENT_STORAGE,
    document,
    encodePng,
  });
  // what the file already holds (figma.root's shared plugin data), e.g. another workspace's history marker
  for (const [key, value] of Object.entries(window.__ROOT_DATA || {})) figma.root.setSharedPluginData('layerloop', key, value);
  window.figma = figma;
  window.__figma = { ...hooks, imageBase64: (hash) => toBase64(hooks.imageBytes(hash)), maskExportsBase64: () => hooks.maskExports.map(toBase64) };
})();`;

/** The harness: the page, the fake figma global, the built plugin. */
function startHarness(serverUrl: string, token = '', rootData: Record<string, string> = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const globals = [
    `window.__ROOT_DATA = ${JSON.stringify(rootData)};`,
    `window.__SOURCE_PNG_B64 = ${JSON.stringify(fs.readFileSync(FIXTURE).toString('base64'))};`,
    // what the user saved in the panel's settings on this machine: the test server
    `window.__CLIENT_STORAGE = ${JSON.stringify({ settings: { serverUrl, token } })};`,
    // Figma defines __html__ as the manifest's ui file
    `window.__html__ = ${JSON.stringify(fs.readFileSync(UI_HTML, 'utf8'))};`,
  ].join('\n');
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>layerloop Figma harness</title>
<style>body { margin: 0; background: #e5e5e5; } #panel { padding: 8px; } iframe { border: 1px solid #bbb; background: #fff; display: block; }</style></head>
<body><div id="panel"></div>
<script src="/globals.js"></script><script src="/fake-figma.js"></script><script src="/glue.js"></script><script src="/code.js"></script></body></html>`;
  const files: Record<string, [string, string | Buffer]> = {
    '/': ['text/html; charset=utf-8', page],
    '/globals.js': ['text/javascript', globals],
    '/fake-figma.js': ['text/javascript', fs.readFileSync(FAKE_FIGMA)],
    '/glue.js': ['text/javascript', GLUE],
    '/code.js': ['text/javascript', fs.readFileSync(CODE_JS)],
  };
  const server = http.createServer((req, res) => {
    const file = files[req.url ?? ''];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': file[0], 'Cache-Control': 'no-store' }).end(file[1]);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}/`, close: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}

/** polled often enough to catch a step of an 8-step tiny-model edit for the progress screenshot */
const waitUntil = (target: Page | Frame, expression: string) => waitFor(target, expression, { pollMs: 10 });

const layers = (page: Page) => read<Layer[]>(page, 'window.__figma.layers()');

async function imageOf(page: Page, hash: string): Promise<RgbaImage> {
  const b64 = await read<string>(page, `window.__figma.imageBase64(${JSON.stringify(hash)})`);
  return decodeImage(new Uint8Array(Buffer.from(b64, 'base64')));
}

describeInBrowser('Figma plugin in Chromium (built code.js + ui.html, fake figma global, real server)', () => {
  let server: ServerProcess;
  let client: Client;
  let harness: { url: string; close: () => Promise<void> };
  let browser: Browser;
  let page: Page;
  let panel: Frame;
  let pageErrors: string[] = [];

  beforeAll(async () => {
    browser = await launchBrowser({ viewport: { width: 360, height: 760 } });
    ({ page, pageErrors } = browser);
    server = await startServer();
    client = makeClient(server.url);
    harness = await startHarness(server.url);
  });

  afterAll(async () => {
    await browser?.close();
    await harness?.close();
    if (server) {
      expect((await server.stop()).code).toBe(0);
      fs.rmSync(server.dataDir, { recursive: true, force: true });
    }
  });

  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  it('opens the panel, which connects to the server and explains the masked selection', async () => {
    await page.goto(harness.url);
    await page.locator('#plugin-ui').waitFor();
    panel = (await (await page.locator('#plugin-ui').elementHandle())!.contentFrame())!;
    await panel.locator('#conn-dot[data-status="connected"]').waitFor();
    await panel.getByText('Edits "Shapes" only under "Circle mask"', { exact: false }).waitFor();
    // the handshake went as in Figma: showUI first, nothing to the UI before it said ready
    const log = await read<string[]>(page, 'window.__figma.log');
    expect(log[0]).toBe('showUI {"width":340,"height":640,"title":"layerloop","themeColors":true}');
    expect(log.indexOf('ui->main ready')).toBeLessThan(log.indexOf('main->ui init'));
  });

  it('applies "make the circle blue" under the mask: a new image layer over the source, outside pixels untouched', async () => {
    await panel.locator('#instruction').fill('make the circle blue');
    await panel.locator('#advanced summary').click();
    await panel.locator('#steps').fill('8');
    await panel.locator('#seed').fill('7');
    // every state the progress line goes through, with the number of previews shown: an 8-step tiny-model
    // edit can run between two polls of the page on a loaded machine
    await read(
      panel,
      "window.__progress = []; new MutationObserver(() => window.__progress.push([document.getElementById('progress-text').textContent, document.querySelectorAll('#previews img').length])).observe(document.getElementById('progress'), { childList: true, subtree: true, characterData: true })",
    );
    // hold the first result download (GET /v1/blobs/:sha) for the in-progress screenshot: previews still shown
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let holding = true;
    await page.route(/\/v1\/blobs\/[0-9a-f]{64}$/, async (route) => {
      if (holding && route.request().method() === 'GET') {
        holding = false;
        await held;
      }
      await route.continue();
    });
    await panel.locator('#apply').click();

    await waitUntil(panel, "document.getElementById('progress-text').textContent === 'Placing the result…' && document.querySelector('#previews img') !== null");
    await page.screenshot({ path: path.join(ARTIFACTS, 'figma-progress.png') });
    release();

    await waitUntil(panel, "document.getElementById('progress-text').textContent.startsWith('Done: a new layer above the source. Seed 7.')");
    await page.unroute(/\/v1\/blobs\/[0-9a-f]{64}$/);
    // during the edit: a step counter with a preview
    const progress = await read<[string, number][]>(panel, 'window.__progress');
    expect(progress.some(([text, previews]) => /^Step [1-7] of 8$/.test(text) && previews > 0)).toBe(true);
    const all = await layers(page);
    expect(all.map((l) => [l.id, l.type])).toEqual([
      ['1:2', 'RECTANGLE'],
      [expect.any(String), 'RECTANGLE'], // just above the source; the temporary mask frame is gone
      ['1:3', 'ELLIPSE'],
    ]);
    const result = all[1];
    expect(result.name).toBe('make the circle blue');
    expect(result.visible).toBe(true);
    expect(result.bounds).toEqual(SOURCE_BOUNDS);
    expect(result.fills).toEqual([expect.objectContaining({ type: 'IMAGE', scaleMode: 'CROP' })]);
    expect(result.sharedPluginData).toEqual({ 'layerloop|documentId': expect.stringMatching(/^[0-9a-f-]{36}$/), 'layerloop|editId': expect.any(String) });
    // one commit before the temporary mask frame (the user's own changes stay their undo step), one after placing
    expect(await read<string[]>(page, 'window.__figma.log.filter((l) => l === "commitUndo")')).toHaveLength(2);
    const placedLog = await read<string[]>(page, 'window.__figma.log');
    expect(placedLog.lastIndexOf('commitUndo')).toBeGreaterThan(placedLog.indexOf(`selection ${result.id}`));
    expect(await read<string[]>(page, 'window.__figma.log.filter((l) => l.startsWith("selection "))')).toEqual([`selection ${result.id}`]);
    expect(placedLog).toContain(`scrollAndZoomIntoView ${result.id}`);

    // the mask the main thread exported: white ellipse on black, the source's size
    const maskB64 = await read<string[]>(page, 'window.__figma.maskExportsBase64()');
    expect(maskB64).toHaveLength(1);
    const mask = await decodeImage(new Uint8Array(Buffer.from(maskB64[0], 'base64')));
    expect([mask.width, mask.height]).toEqual([128, 128]);
    const m = (x: number, y: number) => mask.data[(y * 128 + x) * 4];
    expect([m(40, 44), m(91, 84), m(5, 5), m(21, 44), m(59, 44)]).toEqual([255, 0, 0, 0, 0]);

    const source = await decodeImage(new Uint8Array(fs.readFileSync(FIXTURE)));
    const edited = await imageOf(page, result.fills[0].imageHash!);
    expect([edited.width, edited.height]).toEqual([128, 128]);
    let outside = 0;
    let changedOutside = 0;
    const inside = { n: 0, src: [0, 0, 0], out: [0, 0, 0] };
    for (let y = 0; y < 128; y++) {
      for (let x = 0; x < 128; x++) {
        const i = (y * 128 + x) * 4;
        if (m(x, y) === 0) {
          outside++;
          for (let c = 0; c < 4; c++) if (edited.data[i + c] !== source.data[i + c]) changedOutside++;
        } else if (m(x, y) === 255) {
          inside.n++;
          for (let c = 0; c < 3; c++) {
            inside.src[c] += source.data[i + c];
            inside.out[c] += edited.data[i + c];
          }
        }
      }
    }
    expect(outside).toBeGreaterThan(128 * 128 - Math.PI * 19 * 19); // the whole image but the circle (and its edge)
    expect(changedOutside).toBe(0);
    expect(inside.n).toBeGreaterThan(Math.PI * 16 * 16);
    const [sr, , sb] = inside.src.map((v) => v / inside.n);
    const [or, , ob] = inside.out.map((v) => v / inside.n);
    // towards blue: more blue relative to red than the source's circle had
    expect(ob - or).toBeGreaterThan(sb - sr + 100); // seed 7: red (220, _, 40) became blue (5, _, 254)
    await panel.locator('#history-list li').first().waitFor();
  });

  it('continues from the result layer: "make the square green" is the child of the first edit on the server', async () => {
    const first = (await layers(page))[1];
    await read(page, `window.__figma.select([${JSON.stringify(first.id)}])`); // the user clicks the result layer
    await panel.getByText('Continues from the stored edit of this result layer', { exact: false }).waitFor();
    await panel.locator('#instruction').fill('make the square green');
    await panel.locator('#apply').click();
    await waitUntil(panel, "document.getElementById('progress-text').textContent.startsWith('Done: a new layer above the source.')");
    await panel.locator('#history-list li').nth(1).waitFor();
    await panel.locator('#history-list').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTIFACTS, 'figma-done.png') });

    const all = await layers(page);
    expect(all.map((l) => l.id)).toEqual(['1:2', first.id, expect.any(String), '1:3']); // over the first result
    const second = all[2];
    expect(second.name).toBe('make the square green');
    expect(second.bounds).toEqual(SOURCE_BOUNDS);
    expect(second.sharedPluginData['layerloop|documentId']).toBe(first.sharedPluginData['layerloop|documentId']);

    const { nodes } = await client.documents.history.query({ documentId: first.sharedPluginData['layerloop|documentId'] });
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const firstEdit = byId.get(first.sharedPluginData['layerloop|editId'])!;
    const secondEdit = byId.get(second.sharedPluginData['layerloop|editId'])!;
    expect([firstEdit.kind, firstEdit.instruction]).toEqual(['edit', 'make the circle blue']);
    expect([secondEdit.kind, secondEdit.instruction, secondEdit.parentId]).toEqual(['edit', 'make the square green', firstEdit.id]);
    expect(byId.get(firstEdit.parentId!)!.kind).toBe('source');
    expect(firstEdit.options.steps).toBe(8);
    expect(firstEdit.regions[0].maskSha256).not.toBeNull();
    expect(secondEdit.regions[0].maskSha256).toBeNull(); // the result layer alone: a global edit
  });

  it('masks from words: Preview shows the mask "the circle" gives on the layer, Apply sends the words', async () => {
    await panel.locator('#mask-text').fill('the circle');
    await panel.locator('#mask-preview').click();
    await panel.getByText(/^"the circle" covers \d+ % of the layer: white is what Apply will change\.$/).waitFor();
    await waitUntil(panel, "document.getElementById('mask-preview-image').naturalWidth > 0");
    const shown = await read<[number, number]>(panel, "[document.getElementById('mask-preview-image').naturalWidth, document.getElementById('mask-preview-image').naturalHeight]");
    expect(shown).toEqual([SOURCE_BOUNDS.width, SOURCE_BOUNDS.height]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'figma-mask-words.png') });

    await panel.locator('#instruction').fill('make the circle green');
    await panel.locator('#apply').click();
    await waitUntil(panel, "document.getElementById('progress-text').textContent.startsWith('Done: a new layer above the source.')");
    const placed = (await layers(page)).find((l) => l.name === 'make the circle green')!;
    const { nodes } = await client.documents.history.query({ documentId: placed.sharedPluginData['layerloop|documentId'] });
    const edit = nodes.find((n) => n.id === placed.sharedPluginData['layerloop|editId'])!;
    expect(edit.regions[0]).toMatchObject({ instruction: 'make the circle green', maskText: 'the circle' });
    expect(edit.regions[0].maskSha256).toMatch(/^[0-9a-f]{64}$/);
  });
  it("a file whose marker names another workspace: the panel asks, starts nothing until Start, then rewrites the marker", async () => {
    const dataDir = tempDataDir();
    const { bob, theirs } = await foreignMarkerSetup(dataDir);
    const teamServer = await startServer({ dataDir });
    const key = 'e0e0e0e0-e0e0-4e0e-8e0e-e0e0e0e0e0e0';
    const bobsHarness = await startHarness(teamServer.url, bob, { hostDocumentKey: key, historyMarker: theirs });
    const tab = await browser.context.newPage();
    tab.on('pageerror', (err) => pageErrors.push(err.message));
    const openBobs = () => fetch(`${teamServer.url}/trpc/documents.open`, { method: 'POST', headers: { Authorization: `Bearer ${bob}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ host: 'figma', hostDocumentKey: key, create: false }) });
    try {
      await tab.goto(bobsHarness.url);
      await tab.locator('#plugin-ui').waitFor();
      const ui = (await (await tab.locator('#plugin-ui').elementHandle())!.contentFrame())!;
      await ui.getByText("This file's layerloop history belongs to workspace «studio-a» (recorded in the file), which you are not a member of. Start a new history in «studio-b»?").waitFor();
      expect(await ui.locator('#conn-text').textContent()).toBe('Not connected to a history yet');
      expect((await openBobs()).status).toBe(404); // asking made nothing
      // Apply before answering says so, and sends nothing
      await ui.locator('#instruction').fill('make it blue');
      await ui.locator('#apply').click();
      await ui.getByText('Answer the question above first: Start a new history, or Cancel.').waitFor();
      await ui.locator('#elsewhere-start').click();
      await ui.locator('#conn-dot[data-status="connected"]').waitFor();
      expect(await ui.locator('#elsewhere').isHidden()).toBe(true);
      const opened = await openBobs();
      expect(opened.status).toBe(200);
      const documentId = ((await opened.json()) as { result: { data: { documentId: string } } }).result.data.documentId;
      // the file names bob's new history at once (the user chose it), with the key and id
      const marker = await read<string>(tab, "figma.root.getSharedPluginData('layerloop', 'historyMarker')");
      expect(parseHistoryMarker(marker)).toEqual({ workspace: { id: expect.any(String), name: 'studio-b' }, documentId });
      expect(await read<string>(tab, "figma.root.getSharedPluginData('layerloop', 'documentId')")).toBe(documentId);
    } finally {
      await tab.close();
      await bobsHarness.close();
      expect((await teamServer.stop()).code).toBe(0);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('on a FLUX.2 klein server: the family in the connection line, a selected layer as the reference, the author in History', async () => {
    const KLEIN = path.join(ROOT, 'test', 'fixtures', 'flux2');
    const dataDir = tempDataDir();
    const token = (await usersCli(['add', 'ines', '--workspace', 'studio-i', '--data-dir', dataDir])).last;
    const klein = await startServer({ dataDir, args: ['--model', 'tiny-flux2-klein'] });
    const kleinHarness = await startHarness(klein.url, token);
    const tab = await browser.context.newPage();
    tab.on('pageerror', (err) => pageErrors.push(err.message));
    const sent: string[] = [];
    tab.on('request', (req) => {
      if (req.url().includes('/trpc/edits.create')) sent.push(req.postData() ?? '');
    });
    try {
      await tab.goto(kleinHarness.url);
      await tab.locator('#plugin-ui').waitFor();
      const ui = (await (await tab.locator('#plugin-ui').elementHandle())!.contentFrame())!;
      await ui.getByText(/^Connected: tiny-flux2-klein \(FLUX\.2 \[klein\]\) on cpu · signed in as ines \(studio-i\)$/).waitFor();
      await ui.locator('#reference-row').waitFor();
      // a second image layer on the page, selected alone and taken as the reference
      const refB64 = fs.readFileSync(path.join(KLEIN, 'reference.png')).toString('base64');
      const styleId = await read<string>(
        tab,
        `(() => { const bytes = Uint8Array.from(atob(${JSON.stringify(refB64)}), (c) => c.charCodeAt(0)); const hash = figma.createImage(bytes).hash; return window.__figma.add('RECTANGLE', 'Style', { x: 300, y: 50, width: 80, height: 64 }, { fills: [{ type: 'IMAGE', imageHash: hash, scaleMode: 'FILL', visible: true, opacity: 1 }] }).id; })()`,
      );
      await read(tab, `window.__figma.select([${JSON.stringify(styleId)}])`);
      await ui.locator('#reference-use').click();
      await ui.getByText('Reference: "Style" (80×64)').waitFor();
      // the source alone: a global edit with the reference
      await read(tab, "window.__figma.select(['1:2'])");
      await ui.getByText('Edits all of "Shapes"', { exact: false }).waitFor();
      await ui.locator('#instruction').fill('make it look like this');
      await ui.locator('#advanced summary').click();
      await ui.locator('#steps').fill('4');
      await ui.locator('#apply').click();
      await waitUntil(ui, "document.getElementById('progress-text').textContent.startsWith('Done: a new layer above the source.')");
      expect(sent).toHaveLength(1);
      const request = JSON.parse(sent[0]) as { references?: string[] };
      expect(request.references).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
      // the server holds the layer's pixels: reference.png's (the fake exports an image layer 1:1)
      const stored = await fetch(`${klein.url}/v1/blobs/${request.references![0]}?format=rgba`, { headers: { Authorization: `Bearer ${token}` } });
      const expected = await decodeImage(new Uint8Array(fs.readFileSync(path.join(KLEIN, 'reference.png'))));
      expect([stored.headers.get('x-image-width'), stored.headers.get('x-image-height')]).toEqual(['80', '64']);
      expect(Buffer.from(await stored.arrayBuffer()).equals(Buffer.from(expected.data))).toBe(true);
      // used once: cleared after the Apply
      await ui.getByText('No reference image (optional)').waitFor();
      expect(await ui.locator('#reference-remove').isHidden()).toBe(true);
      // History names who made the edit
      await ui.locator('#history-list li .history-author').first().waitFor();
      expect(await ui.locator('#history-list li .history-author').first().textContent()).toBe('by ines');
    } finally {
      await tab.close();
      await kleinHarness.close();
      expect((await klein.stop()).code).toBe(0);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
