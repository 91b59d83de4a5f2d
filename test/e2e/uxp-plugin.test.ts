/**
 * The Photoshop UXP panel end to end (issue #6): the installable package built for the test server (npm run
 * package -- --server <its URL>: the release manifest, index.html and its real bundle with the real
 * UxpPhotoshopHost) in headless Chromium, with require('photoshop') / require('uxp') faked by
 * test/e2e/uxp-harness/fake-photoshop.js over real pixels, against the real server process with the tiny model.
 *
 * A 160x140 document holds one pixel layer (test/fixtures/shapes-128.png at (16,6)) and a feathered elliptical
 * selection around the circle. Apply makes a new layer right above the source, at the source's bounds, whose
 * mask is the selection cropped to the layer (soft values kept) and whose pixels outside the selection equal the
 * source's; a second Apply on that layer is the first edit's child in the server's history.
 * Screenshots (panel + the fake document) go to test-artifacts/uxp-progress.png and uxp-done.png.
 *
 * Needs Debian's Chromium at /usr/bin/chromium; skipped without it, except in CI (process.env.CI), where it fails.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { ARTIFACTS, describeInBrowser, launchBrowser, read, waitUntil as waitFor, type Browser } from '../support/browser';
import { usersCli } from '../support/isolation';
import { ROOT, makeClient, startServer, tempDataDir, type ServerProcess } from '../support/server';

const FAKE = path.join(ROOT, 'test', 'e2e', 'uxp-harness', 'fake-photoshop.js');
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'shapes-128.png');
const XMP_NS = 'http://ns.layerloop.dev/photoshop/1.0/';
/** the fixture's offset in the document, and its shapes' centres in document pixels */
const OFFSET = { x: 16, y: 6 };
const CIRCLE = { x: 40 + OFFSET.x, y: 44 + OFFSET.y };
const SQUARE = { x: 91 + OFFSET.x, y: 84 + OFFSET.y };

/** The page's glue: the fake modules over the fixture, as require('photoshop') / require('uxp'). */
const GLUE = `(() => {
  const f = window.__LL_FIXTURE;
  const { modules, hooks } = createFakePhotoshop({ fixture: { width: f.width, height: f.height, rgba: Uint8Array.from(atob(f.rgba), (c) => c.charCodeAt(0)) }, offset: ${JSON.stringify(OFFSET)}, document });
  window.require = (name) => {
    if (!(name in modules)) throw new Error("require('" + name + "'): not faked");
    return modules[name];
  };
  window.__fakePs = hooks;
})();`;

interface Bounds {
  left: number;
  top: number;
  right: number;
  bottom: number;
}
interface Dump {
  width: number;
  height: number;
  active: number[];
  selection: number[];
  layers: { id: number; name: string; bounds: Bounds; rgba: number[]; mask: number[] | null }[];
}

/** on timeout, say what the panel showed */
const waitUntil = (page: Page, expression: string) =>
  waitFor(page, expression, {
    explain: async () => `panel: ${await read<string>(page, "document.getElementById('status').textContent + ' | ' + document.getElementById('error').textContent")}`,
  });

/** Serves plugin-uxp/ (index.html, dist/index.js) on 127.0.0.1. */
function serveDir(dir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const types: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json', '.json': 'application/json' };
  const server = http.createServer((req, res) => {
    if (req.url === '/favicon.ico') {
      res.writeHead(204).end(); // Chromium asks for one
      return;
    }
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.resolve(dir, rel);
    if (!file.startsWith(dir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

const at = (d: Dump, x: number, y: number) => y * d.width + x;
const inside = (b: Bounds, x: number, y: number) => x >= b.left && x < b.right && y >= b.top && y < b.bottom;

/** The new layer's checks: right above `below`, at its bounds, mask = selection cropped, pixels outside kept. */
function checkPlaced(d: Dump, layerId: number, belowId: number, selection: number[]) {
  const index = d.layers.findIndex((l) => l.id === layerId);
  const layer = d.layers[index];
  const below = d.layers.find((l) => l.id === belowId)!;
  expect(d.layers[index + 1].id).toBe(belowId); // directly above the layer it was made from
  expect(layer.bounds).toEqual(below.bounds);
  expect(layer.mask).not.toBeNull();
  let soft = 0;
  let outside = 0;
  let changedOutside = 0;
  for (let y = 0; y < d.height; y++)
    for (let x = 0; x < d.width; x++) {
      const i = at(d, x, y);
      if (!inside(layer.bounds, x, y)) continue;
      expect(layer.mask![i]).toBe(selection[i]); // soft values kept
      if (selection[i] > 0 && selection[i] < 255) soft++;
      if (selection[i] === 0) {
        outside++;
        for (let k = 0; k < 4; k++) if (layer.rgba[i * 4 + k] !== below.rgba[i * 4 + k]) changedOutside++;
      }
    }
  expect(soft).toBeGreaterThan(50);
  expect(outside).toBeGreaterThan(5000);
  expect(changedOutside).toBe(0);
}

/** Mean (blue - red) over the fully selected pixels of a layer. */
function blueness(d: Dump, layerId: number, selection: number[]): number {
  const layer = d.layers.find((l) => l.id === layerId)!;
  let sum = 0;
  let n = 0;
  for (let i = 0; i < selection.length; i++)
    if (selection[i] === 255) {
      sum += layer.rgba[i * 4 + 2] - layer.rgba[i * 4];
      n++;
    }
  return sum / n;
}

describeInBrowser('Photoshop UXP panel in Chromium with a fake Photoshop', () => {
  let server: ServerProcess;
  let packaged: string;
  let files: { url: string; close: () => Promise<void> };
  let browser: Browser;
  let page: Page;
  let pageErrors: string[] = [];

  beforeAll(async () => {
    // a build for this server: Photoshop lets a plugin reach only the servers its manifest lists. Its files are
    // served from their folder-to-be first, so the server can be told to allow that page's origin: Photoshop's UXP
    // runtime sends no Origin (it does no CORS), but this harness is a web page on another port
    packaged = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-uxp-e2e-'));
    files = await serveDir(path.join(packaged, 'package', 'photoshop'));
    server = await startServer({ args: ['--allow-origin', files.url] });
    execFileSync(process.execPath, ['tools/plugins/package.mjs', '--server', server.url, '--out', packaged], { cwd: ROOT, stdio: 'pipe' });
    const { data, info } = await sharp(FIXTURE).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    browser = await launchBrowser({
      viewport: { width: 1000, height: 760 },
      initScripts: [{ content: `window.__LL_FIXTURE = ${JSON.stringify({ width: info.width, height: info.height, rgba: data.toString('base64') })};` }, { path: FAKE }, { content: GLUE }],
    });
    ({ page, pageErrors } = browser);
    page.on('response', (res) => {
      if (res.status() >= 400) pageErrors.push(`${res.status()} from ${res.request().method()} ${res.url()}`);
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await files?.close();
    if (packaged) fs.rmSync(packaged, { recursive: true, force: true });
    if (server) {
      expect((await server.stop()).code).toBe(0);
      fs.rmSync(server.dataDir, { recursive: true, force: true });
    }
  });

  it('edits a soft selection into a new masked layer, then continues from that layer', async () => {
    await page.goto(`${files.url}/index.html`);
    await waitUntil(page, "document.getElementById('history-title').textContent === 'History of shapes.psd'");

    // settings: the test server
    await page.locator('#settings-toggle').click();
    await page.locator('#server-url').fill(server.url);
    await page.locator('#settings-save').click();
    await page.getByText('Connected to the layerloop server.').waitFor();

    // a feathered ellipse around the circle
    await read(page, `window.__fakePs.setEllipseSelection(${CIRCLE.x}, ${CIRCLE.y}, 22, 20, 8)`);
    const before = await read<Dump>(page, 'window.__fakePs.dump()');
    const selection1 = before.selection;
    expect(before.layers.map((l) => [l.id, l.bounds])).toEqual([[1, { left: 16, top: 6, right: 144, bottom: 134 }]]);

    await page.locator('#instruction').fill('make the circle blue');
    await page.locator('#advanced-toggle').click();
    await page.locator('#steps').fill('8');
    // hold the result's download (GET /v1/blobs/:sha?format=rgba) until the in-progress screenshot is taken: the
    // tiny model finishes 8 steps faster than the panel polls, so this is the one moment the panel is reliably busy
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let downloads = 0;
    await page.route(/\/v1\/blobs\/[0-9a-f]{64}\?format=rgba$/, async (route) => {
      downloads++;
      await held;
      await route.continue();
    });
    await page.locator('#apply').click();
    await waitUntil(page, "document.getElementById('status').textContent === 'Downloading the result…'");
    expect(await read<boolean>(page, "document.getElementById('apply').disabled")).toBe(true);
    expect((await read<Dump>(page, 'window.__fakePs.dump()')).layers).toHaveLength(1); // nothing placed yet
    await page.screenshot({ path: path.join(ARTIFACTS, 'uxp-progress.png') });
    release();
    await waitUntil(page, "document.getElementById('status').textContent.startsWith('Placed \"make the circle blue\" above the source layer')");
    await waitUntil(page, "document.getElementById('apply').disabled === false && !window.__fakePs.modal");

    const after1 = await read<Dump>(page, 'window.__fakePs.dump()');
    expect(after1.layers.map((l) => l.name)).toEqual(['make the circle blue', 'shapes']);
    const first = after1.layers[0];
    expect(after1.active).toEqual([first.id]);
    checkPlaced(after1, first.id, 1, selection1);
    const source = after1.layers[1];
    expect(source.rgba).toEqual(before.layers[0].rgba); // the source layer untouched
    expect(downloads).toBe(1);
    expect(blueness(after1, first.id, selection1)).toBeGreaterThan(blueness(after1, 1, selection1) + 20); // the circle moved towards blue

    // second edit: on the result layer, a selection around the square
    await read(page, `window.__fakePs.select(${first.id})`);
    await read(page, `window.__fakePs.setEllipseSelection(${SQUARE.x}, ${SQUARE.y}, 22, 22, 6)`);
    const selection2 = (await read<Dump>(page, 'window.__fakePs.dump()')).selection;
    await page.locator('#instruction').fill('make the square green');
    await page.locator('#apply').click();
    await waitUntil(page, "document.getElementById('status').textContent.startsWith('Placed \"make the square green\" above the source layer')");
    await waitUntil(page, "document.getElementById('apply').disabled === false && !window.__fakePs.modal");
    await waitUntil(page, "document.querySelectorAll('#history-list .history-item').length === 3");
    await page.screenshot({ path: path.join(ARTIFACTS, 'uxp-done.png') });

    const after2 = await read<Dump>(page, 'window.__fakePs.dump()');
    expect(after2.layers.map((l) => l.name)).toEqual(['make the square green', 'make the circle blue', 'shapes']);
    const second = after2.layers[0];
    checkPlaced(after2, second.id, first.id, selection2);
    expect(after2.layers[1].rgba).toEqual(first.rgba);

    // the server's history: source -> first edit -> second edit, continued from the stored latent
    const props = JSON.parse(await read<string>(page, 'window.__fakePs.xmp()')) as Record<string, string>;
    const key = props[`${XMP_NS}|documentKey`];
    const records = JSON.parse(props[`${XMP_NS}|layerEdits`]) as { layers: Record<string, string> };
    const client = makeClient(server.url);
    const { documentId, created } = await client.documents.open.mutate({ host: 'photoshop', hostDocumentKey: key });
    expect(created).toBe(false);
    const { nodes } = await client.documents.history.query({ documentId });
    expect(nodes.map((n) => [n.kind, n.instruction])).toEqual([
      ['source', null],
      ['edit', 'make the circle blue'],
      ['edit', 'make the square green'],
    ]);
    expect(nodes[1].parentId).toBe(nodes[0].id);
    expect(nodes[2].parentId).toBe(nodes[1].id);
    expect(nodes[2].conditioning).toBe('latent');
    expect(records.layers[String(first.id)]).toBe(nodes[1].id);
    expect(records.layers[String(second.id)]).toBe(nodes[2].id);
    expect(nodes[1].options.steps).toBe(8);

    expect(await read<string[]>(page, 'window.__fakePs.problems')).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 180_000); // ~30 s alone; the whole suite on 2 shared cores has taken it past 90 s

  it('masks from words: Preview shows the mask "the background" gives on the active layer, at its size', async () => {
    await page.locator('#mask-text').fill('the background');
    await page.locator('#mask-preview').click();
    await page.getByText(/^"the background" covers \d+ % of the layer: white is what Apply will change\.$/).waitFor();
    await waitUntil(page, "document.getElementById('mask-preview-image').naturalWidth > 0");
    expect(await read<string>(page, "document.getElementById('mask-preview-image').getAttribute('src').slice(0, 22)")).toBe('data:image/png;base64,');
    // the active layer is the last result, 128 px wide like the source layer
    expect(await read<number[]>(page, "[document.getElementById('mask-preview-image').naturalWidth, document.getElementById('mask-preview-image').naturalHeight]")).toEqual([128, 128]);
    await page.locator('#mask-text').fill('the hexagon');
    await page.locator('#mask-preview').click();
    await page.getByText('the segmenter does not know "hexagon"', { exact: false }).waitFor();
    expect(await read<string>(page, "document.getElementById('mask-preview-image').style.display")).toBe('none');
    expect(pageErrors).toEqual([expect.stringMatching(/^400 from POST .*\/trpc\/masks\.preview$/)]); // the browser logs the refusal itself
  }, 60_000);
  it('on a FLUX.2 klein server: the family in the panel, a chosen layer as the reference, the author in History', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-uxp-klein-'));
    const kleinFiles = await serveDir(path.join(out, 'package', 'photoshop'));
    const dataDir = tempDataDir();
    const token = (await usersCli(['add', 'ines', '--workspace', 'studio-i', '--data-dir', dataDir])).last;
    const klein = await startServer({ dataDir, args: ['--allow-origin', kleinFiles.url, '--model', 'tiny-flux2-klein'] });
    const tab = await browser.context.newPage();
    tab.on('pageerror', (err) => pageErrors.push(err.message));
    const sent: string[] = [];
    tab.on('request', (req) => {
      if (req.url().includes('/trpc/edits.create')) sent.push(req.postData() ?? '');
    });
    try {
      execFileSync(process.execPath, ['tools/plugins/package.mjs', '--server', klein.url, '--out', out], { cwd: ROOT, stdio: 'pipe' });
      await tab.goto(`${kleinFiles.url}/index.html`);
      await waitUntil(tab, "document.getElementById('history-title').textContent === 'History of shapes.psd'");
      await tab.locator('#settings-toggle').click();
      await tab.locator('#server-url').fill(klein.url);
      await tab.locator('#token').fill(token);
      await tab.locator('#settings-save').click();
      await tab.getByText('Connected to the layerloop server, signed in as ines (studio-i).').waitFor();
      expect(await tab.locator('#server-line').textContent()).toBe('Model: tiny-flux2-klein (FLUX.2 [klein]) on cpu');
      await tab.locator('#reference-row').waitFor();

      // a 20x16 orange layer, chosen as the reference; then the shapes layer is the one edited
      const block = Array.from({ length: 20 * 16 }, () => [240, 120, 20, 255]).flat();
      const styleId = await read<number>(tab, `window.__fakePs.addLayer('style', 2, 2, 20, 16, ${JSON.stringify(block)})`);
      await read(tab, `window.__fakePs.select(${styleId})`);
      await tab.locator('#reference-use').click();
      await tab.getByText('Reference: style (20×16)').waitFor();
      await read(tab, 'window.__fakePs.select(1)');
      await tab.locator('#instruction').fill('make it look like this');
      await tab.locator('#advanced-toggle').click();
      await tab.locator('#steps').fill('4');
      await tab.locator('#apply').click();
      await waitUntil(tab, "document.getElementById('status').textContent.startsWith('Placed \"make it look like this\" above the source layer')");

      expect(sent).toHaveLength(1);
      const request = JSON.parse(sent[0]) as { references?: string[] };
      expect(request.references).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
      const stored = await fetch(`${klein.url}/v1/blobs/${request.references![0]}?format=rgba`, { headers: { Authorization: `Bearer ${token}` } });
      expect([stored.headers.get('x-image-width'), stored.headers.get('x-image-height')]).toEqual(['20', '16']);
      expect(Array.from(new Uint8Array(await stored.arrayBuffer()))).toEqual(block);
      // used once, then forgotten
      await tab.getByText('No reference image').waitFor();
      // History names who made each entry
      await waitUntil(tab, "document.querySelectorAll('#history-list .history-item').length === 2");
      const labels = await read<string[]>(tab, "Array.from(document.querySelectorAll('#history-list .history-label')).map((e) => e.textContent)");
      expect(labels).toEqual([expect.stringMatching(/^● make it look like this \(#1, seed \d+, by ines\)$/), 'Original layer (by ines)']);
      expect(await read<string[]>(tab, 'window.__fakePs.problems')).toEqual([]);
    } finally {
      await tab.close();
      await kleinFiles.close();
      fs.rmSync(out, { recursive: true, force: true });
      expect((await klein.stop()).code).toBe(0);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 300_000); // packaging for its server and a klein edit: ~100 s on 2 shared cores
});
