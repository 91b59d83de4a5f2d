/**
 * The playground page (GET /) in headless Chromium, driven with playwright-core against the real server
 * process: upload an image, paint a mask over the circle, apply an instruction, watch progress and a preview,
 * see the result and the history tree, continue from the result node, and check what the page sent through
 * the tRPC API. Screenshots go to test-artifacts/ (git-ignored).
 *
 * Needs Debian's Chromium at /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it). Without it
 * the suite is skipped with a message, except in CI (process.env.CI set), where it fails.
 *
 * Like server.test.ts, nothing depends on specific pixels of the model's output, only on behaviour and ids.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { MAX_INSTRUCTION_LENGTH, MAX_SEED, MAX_STEPS, MAX_VARIATIONS } from '../../shared/protocol';
import { ARTIFACTS, describeInBrowser, launchBrowser, read, waitUntil as waitFor, type Browser } from '../support/browser';
import { parseHistoryMarker } from '../../shared/client';
import { foreignMarkerSetup, usersCli } from '../support/isolation';
import { ROOT, makeClient, startServer, tempDataDir, type Client, type ServerProcess } from '../support/server';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'shapes-128.png');
/** centres of shapes-128.png's circle and square, in image pixels */
const CIRCLE = { x: 40, y: 44 };
const SQUARE = { x: 91, y: 84 };

/** One mouse stroke around `at` (image pixels) on the mask canvas, which shows the 128 px image scaled up. */
async function paintAround(page: Page, at: { x: number; y: number }): Promise<void> {
  const box = (await page.locator('#mask').boundingBox())!;
  const scale = box.width / 128;
  expect(scale).toBeGreaterThan(1); // the small image is shown enlarged: the mapping must account for it
  const screen = (x: number, y: number) => [box.x + x * scale, box.y + y * scale] as const;
  await page.mouse.move(...screen(at.x - 8, at.y - 6));
  await page.mouse.down();
  for (const [dx, dy] of [[8, -6], [8, 6], [-8, 6], [0, 0]]) await page.mouse.move(...screen(at.x + dx, at.y + dy), { steps: 6 });
  await page.mouse.up();
}

/** The mask overlay's alpha (the mask value) at an image pixel: the canvas has the image's size. */
function alphaAt(page: Page, x: number, y: number): Promise<number> {
  return read<number>(page, `document.getElementById('mask').getContext('2d').getImageData(${x}, ${y}, 1, 1).data[3]`);
}

const waitUntil = (page: Page, expression: string) => waitFor(page, expression, { timeoutMs: 60_000, pollMs: 25 });

describeInBrowser('playground page in Chromium', () => {
  let server: ServerProcess;
  let client: Client;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[] = [];
  let sourceId: string;
  let firstEditId: string;

  beforeAll(async () => {
    browser = await launchBrowser({ viewport: { width: 1280, height: 860 } });
    ({ page, pageErrors } = browser);
    server = await startServer();
    client = makeClient(server.url);
  });

  afterAll(async () => {
    await browser?.close();
    if (server) {
      expect((await server.stop()).code).toBe(0);
      fs.rmSync(server.dataDir, { recursive: true, force: true });
    }
  });

  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  it('serves the page at / without a token, with inputs bounded by the protocol limits', async () => {
    const res = await page.goto(server.url);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-type']).toBe('text/html; charset=utf-8');
    await page.getByText(/Connected · tiny-pix2pix \(InstructPix2Pix\) on cpu/).waitFor(); // the model and its family
    await page.getByText(/^Document [0-9a-f]{8}$/).waitFor();
    expect(await page.getByRole('button', { name: 'Apply' }).isDisabled()).toBe(true); // no image yet
    expect(await page.locator('#reference-row').isHidden()).toBe(true); // InstructPix2Pix reads no reference images
    // the page sets its inputs' bounds and defaults from shared/protocol.ts when it starts
    const attr = (selector: string, name: string) => page.locator(selector).getAttribute(name);
    expect([await attr('#opt-strength', 'min'), await attr('#opt-strength', 'max'), await attr('#opt-strength', 'step')]).toEqual(['0.05', '1', '0.05']);
    expect(await page.locator('#opt-strength').inputValue()).toBe('1');
    expect(await page.locator('#opt-steps').inputValue()).toBe('20');
    expect(Number(await attr('#opt-steps', 'max'))).toBe(MAX_STEPS);
    expect(Number(await attr('#opt-variations', 'max'))).toBe(MAX_VARIATIONS);
    expect(Number(await attr('#opt-seed', 'max'))).toBe(MAX_SEED);
    expect(Number(await attr('#instruction', 'maxlength'))).toBe(MAX_INSTRUCTION_LENGTH);
  });

  it("shows the server's message when an upload is refused", async () => {
    const junk = Buffer.from('this is not a PNG');
    const direct = await fetch(`${server.url}/v1/blobs`, { method: 'PUT', headers: { 'Content-Type': 'image/png' }, body: junk });
    const { error } = (await direct.json()) as { error: string };
    expect(direct.status).toBeGreaterThanOrEqual(400);
    await page.locator('#file').setInputFiles({ name: 'broken.png', mimeType: 'image/png', buffer: junk });
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain(`Upload failed: ${error}`);
    await page.getByRole('button', { name: 'Dismiss the error' }).click();
    await alert.waitFor({ state: 'hidden' });
  });

  it('uploads an image, paints a mask over the circle, applies an edit with progress and previews', async () => {
    await page.locator('#file').setInputFiles(FIXTURE);
    await page.locator('#canvas-wrap').waitFor();
    await waitUntil(page, "document.getElementById('image').naturalWidth === 128");

    await page.locator('#brush-size').fill('100');
    await paintAround(page, CIRCLE);
    // the overlay canvas has the image's size: the circle is painted, the square (around 90,90) is not
    expect(await alphaAt(page, CIRCLE.x, CIRCLE.y)).toBe(255);
    expect(await alphaAt(page, SQUARE.x, SQUARE.y)).toBe(0);
    await page.getByText(/Only the painted area changes/).waitFor();

    await page.getByLabel('Instruction').fill('make the circle blue');
    await page.getByText('Advanced').click();
    await page.getByLabel('Steps').fill('8');

    // every text the progress line shows, and every preview, even if the edit outruns the polling below
    await read(page, `(() => {
      window.__seen = { texts: [], previews: 0 };
      new MutationObserver(() => window.__seen.texts.push(document.getElementById('progress-text').textContent))
        .observe(document.getElementById('progress-text'), { childList: true, characterData: true, subtree: true });
      new MutationObserver(() => { if (document.getElementById('preview').src.startsWith('data:image/png;base64,')) window.__seen.previews++; })
        .observe(document.getElementById('preview'), { attributes: true, attributeFilter: ['src'] });
    })()`);
    await page.getByRole('button', { name: 'Apply' }).click();
    await waitUntil(page, "window.__seen.previews > 0 && document.getElementById('progress').value > 0");
    await page.screenshot({ path: path.join(ARTIFACTS, 'playground-progress.png') });

    await page.getByText(/^Done in [\d.]+ s · seed \d+$/).waitFor();
    const seen = await read<{ texts: string[]; previews: number }>(page, 'window.__seen');
    expect(seen.texts).toContainEqual(expect.stringMatching(/^Step \d of 8 · seed \d+$/));
    expect(seen.previews).toBeGreaterThan(0);

    const thumb = page.locator('#results button[data-node-id]');
    await thumb.first().waitFor();
    expect(await thumb.count()).toBe(1);
    await page.locator('#results img[src^="blob:"]').first().waitFor(); // GET /v1/blobs/:sha, shown
  });

  it('shows the history tree source -> edit, and continues from a clicked node', async () => {
    const source = page.locator('#history > li > button[data-kind="source"]');
    const edit = page.locator('#history > li > ul > li > button[data-kind="edit"]');
    await edit.waitFor();
    expect(await source.count()).toBe(1);
    expect(await edit.count()).toBe(1);
    sourceId = (await source.getAttribute('data-node-id'))!;
    firstEditId = (await edit.getAttribute('data-node-id'))!;
    expect(await edit.getAttribute('data-parent-id')).toBe(sourceId);
    expect(await edit.textContent()).toContain('make the circle blue');

    // click the source (it becomes current), then the edit: the next Apply continues from the edit
    await source.click();
    await page.locator(`#history button[data-node-id="${sourceId}"][aria-current="true"]`).waitFor();
    await edit.click();
    await page.locator(`#history button[data-node-id="${firstEditId}"][aria-current="true"]`).waitFor();

    // a new mask, over the square
    await page.getByRole('button', { name: 'Clear' }).click();
    expect(await alphaAt(page, CIRCLE.x, CIRCLE.y)).toBe(0);
    await paintAround(page, SQUARE);
    await page.getByLabel('Instruction').fill('make the square green');
    await page.getByRole('button', { name: 'Apply' }).click();
    const second = page.locator(`#history button[data-kind="edit"][data-parent-id="${firstEditId}"]`);
    await second.waitFor();
    expect(await second.textContent()).toContain('make the square green');
    // nested in the first edit's list item (source > edit > edit), and shown as the current image
    const nested = page.locator('#history > li > ul > li > ul > li > button');
    expect(await nested.count()).toBe(1);
    expect(await nested.getAttribute('data-node-id')).toBe(await second.getAttribute('data-node-id'));
    await page.locator('#history button[aria-current="true"][data-kind="edit"]').filter({ hasText: 'make the square green' }).waitFor();
    await page.getByText(/^Done in /).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'playground-done.png') });
  });

  it('sent what the page showed: the tree, the instructions and a grayscale mask of the image size over the circle', async () => {
    const key = await read<string>(page, "localStorage.getItem('layerloop.playground.documentKey')");
    const { documentId, created } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: key });
    expect(created).toBe(false);
    const { nodes } = await client.documents.history.query({ documentId });
    expect(nodes.map((n) => [n.kind, n.parentId, n.instruction])).toEqual([
      ['source', null, null],
      ['edit', sourceId, 'make the circle blue'],
      ['edit', firstEditId, 'make the square green'],
    ]);
    expect(nodes[0].id).toBe(sourceId);
    expect(nodes[1].id).toBe(firstEditId);
    expect(nodes[1].options.steps).toBe(8);
    expect(nodes[2].conditioning).toBe('latent'); // continued from the stored edit, not re-uploaded pixels

    const mask = async (sha256: string) => {
      const res = await fetch(`${server.url}/v1/blobs/${sha256}`);
      const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([128, 128]);
      return (x: number, y: number) => data[(y * info.width + x) * info.channels];
    };
    const first = await mask(nodes[1].regions[0].maskSha256!);
    expect([first(CIRCLE.x, CIRCLE.y), first(SQUARE.x, SQUARE.y), first(40, 100)]).toEqual([255, 0, 0]); // circle, square, triangle
    const soft = Array.from({ length: 128 }, (_, x) => first(x, CIRCLE.y)).filter((v) => v > 0 && v < 255);
    expect(soft.length).toBeGreaterThan(0); // a soft brush leaves partial values at the stroke's edge
    const second = await mask(nodes[2].regions[0].maskSha256!);
    expect([second(CIRCLE.x, CIRCLE.y), second(SQUARE.x, SQUARE.y)]).toEqual([0, 255]);
  });

  it('keeps the document and the current node across a reload', async () => {
    const current = await page.locator('#history button[aria-current="true"]').getAttribute('data-node-id');
    await page.reload();
    await page.locator('#history button[data-kind="edit"]').nth(1).waitFor();
    expect(await page.locator('#history button[data-node-id]').count()).toBe(3);
    await page.locator(`#history button[data-node-id="${current}"][aria-current="true"]`).waitFor();
    await page.locator('#canvas-wrap').waitFor();
  });

  it('takes an image dropped on the stage; the same pixels show as their existing source node', async () => {
    const key = await read<string>(page, "localStorage.getItem('layerloop.playground.documentKey')");
    const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: key });
    const sourceSha = (await client.documents.history.query({ documentId })).nodes[0].resultImageSha256;
    const files = await page.evaluateHandle(`(async () => {
      const bytes = await (await fetch('/v1/blobs/${sourceSha}')).blob();
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
      return dt;
    })()`);
    await page.locator('#stage').dispatchEvent('drop', { dataTransfer: files });
    await page.locator(`#history button[data-node-id="${sourceId}"][aria-current="true"]`).waitFor();
    expect(await page.locator('#image-info').textContent()).toBe('dropped.png · 128×128');
  });

  it('cancels a running edit', async () => {
    await page.getByLabel('Instruction').fill('make the triangle purple');
    await page.getByText('Advanced').click(); // closed again after the reload
    await page.getByLabel('Steps').fill(String(MAX_STEPS));
    await page.getByLabel('Variations').fill(String(MAX_VARIATIONS));
    await page.getByRole('button', { name: 'Apply' }).click();
    const cancel = page.getByRole('button', { name: 'Cancel' });
    await waitUntil(page, "document.getElementById('progress').value > 0");
    await cancel.click();
    await page.getByText('Cancelled.').waitFor();
    expect(await cancel.isDisabled()).toBe(true);
    expect(await page.getByRole('button', { name: 'Apply' }).isDisabled()).toBe(false);
    expect(await page.locator('#history button[data-node-id]').count()).toBe(3);
  });

  it("a history marker of another workspace in this browser: asks, and starts a new history only when the user accepts", async () => {
    const dataDir = tempDataDir();
    const { bob, theirs } = await foreignMarkerSetup(dataDir);
    const team = await startServer({ dataDir });
    const key = 'd0d0d0d0-d0d0-4d0d-8d0d-d0d0d0d0d0d0';
    const tab = await browser.context.newPage(); // another port, another origin: its own local storage
    tab.on('pageerror', (err) => pageErrors.push(err.message));
    // alice worked in this browser before; now bob's token is in the settings
    const seed = { 'layerloop.playground.documentKey': key, 'layerloop.playground.historyMarker': theirs, 'layerloop.playground.token': bob };
    await tab.addInitScript({
      content: `if (localStorage.getItem('layerloop.playground.token') === null) for (const [k, v] of Object.entries(${JSON.stringify(seed)})) localStorage.setItem(k, v);`,
    });
    const questions: string[] = [];
    let accept = false;
    tab.on('dialog', (d) => {
      questions.push(d.message());
      // a dialog Chromium has already closed (a reload racing the answer) rejects; the questions asked and what
      // the server holds are what this test checks, so a late answer must not become an unhandled rejection
      (accept ? d.accept() : d.dismiss()).catch(() => undefined);
    });
    const openBobs = () => fetch(`${team.url}/trpc/documents.open`, { method: 'POST', headers: { Authorization: `Bearer ${bob}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ host: 'web', hostDocumentKey: key, create: false }) });
    try {
      await tab.goto(team.url);
      await tab.getByText(/No history was started: this browser's layerloop history belongs to workspace «studio-a»/).waitFor();
      expect(questions[0]).toBe("This file's layerloop history belongs to workspace «studio-a» (recorded in the file), which you are not a member of. Start a new history in «studio-b»?");
      expect((await openBobs()).status).toBe(404); // declined: nothing made
      accept = true;
      await tab.reload();
      await tab.getByText(/^Document [0-9a-f]{8}$/).waitFor();
      const opened = await openBobs();
      expect(opened.status).toBe(200);
      const documentId = ((await opened.json()) as { result: { data: { documentId: string } } }).result.data.documentId;
      expect(parseHistoryMarker(await read<string>(tab, "localStorage.getItem('layerloop.playground.historyMarker')"))).toEqual({ workspace: { id: expect.any(String), name: 'studio-b' }, documentId });
      expect(questions).toHaveLength(2);
    } finally {
      await tab.close();
      expect((await team.stop()).code).toBe(0);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('works with a server that needs a token, once it is entered in the settings', async () => {
    const token = 'playground-token-0123456789';
    const guarded = await startServer({ token });
    const tab = await browser.context.newPage(); // another port, another origin: its own local storage
    tab.on('pageerror', (err) => pageErrors.push(err.message));
    try {
      await tab.goto(guarded.url); // the page itself needs no token
      await tab.getByText(/needs an access token: enter it under Settings/).waitFor();
      expect(await tab.getByRole('alert').textContent()).toMatch(/Could not open the document: .*requires a token/);
      await tab.getByLabel('Access token').fill(token); // the settings opened themselves
      await tab.getByRole('button', { name: 'Save' }).click();
      await tab.getByText(/^Document [0-9a-f]{8}$/).waitFor();
      await tab.getByText(/Connected · tiny-pix2pix/).waitFor();

      await tab.locator('#file').setInputFiles(FIXTURE); // PUT with Authorization
      await tab.locator('#canvas-wrap').waitFor();
      await waitUntil(tab, "document.getElementById('image').naturalWidth === 128"); // GET with Authorization
      await tab.getByLabel('Instruction').fill('make the circle blue');
      await tab.getByText('Advanced').click();
      await tab.getByLabel('Steps').fill('2');
      await tab.getByRole('button', { name: 'Apply' }).click(); // no mask: the whole image
      await tab.getByText(/^Done in /).waitFor(); // the progress stream authenticated with connectionParams.token
      await tab.locator('#history button[data-kind="edit"]').waitFor();
    } finally {
      await tab.close();
      expect((await guarded.stop()).code).toBe(0);
      fs.rmSync(guarded.dataDir, { recursive: true, force: true });
    }
  });

  it('offers a reference image on a FLUX.2 klein server and sends it with the edit; history names the author', async () => {
    const KLEIN = path.join(ROOT, 'test', 'fixtures', 'flux2');
    const dataDir = tempDataDir();
    const personal = (await usersCli(['add', 'ines', '--workspace', 'studio-i', '--data-dir', dataDir])).last;
    const klein = await startServer({ dataDir, token: 'klein-shared-token-0123456789', args: ['--model', 'tiny-flux2-klein'] });
    const tab = await browser.context.newPage();
    tab.on('pageerror', (err) => pageErrors.push(err.message));
    const sent: string[] = [];
    tab.on('request', (req) => {
      if (req.url().includes('/trpc/edits.create')) sent.push(req.postData() ?? '');
    });
    try {
      await tab.goto(klein.url);
      await tab.getByText(/needs an access token: enter it under Settings/).waitFor();
      await tab.getByLabel('Access token').fill(personal); // a personal token: the history names its user
      await tab.getByRole('button', { name: 'Save' }).click();
      await tab.getByText(/Connected · signed in as ines \(studio-i\) · tiny-flux2-klein \(FLUX\.2 \[klein\]\) on cpu/).waitFor();
      await tab.locator('#reference-row').waitFor();
      await tab.locator('#file').setInputFiles(path.join(KLEIN, 'source.png'));
      await tab.locator('#canvas-wrap').waitFor();
      await tab.locator('#reference-file').setInputFiles(path.join(KLEIN, 'reference.png'));
      await tab.getByText('reference.png · 80×64').waitFor();
      await tab.getByLabel('Instruction').fill('make the mug look like this');
      await tab.getByText('Advanced').click();
      await tab.getByLabel('Steps').fill('4');
      await tab.getByRole('button', { name: 'Apply' }).click();
      await tab.getByText(/^Done in /).waitFor();
      await tab.locator('#history button[data-kind="edit"]').waitFor();
      expect(await tab.locator('#history button[data-kind="edit"] .meta').textContent()).toMatch(/ · by ines$/);
      expect(sent).toHaveLength(1);
      expect(JSON.parse(sent[0]).references).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
      await tab.getByRole('button', { name: 'Remove' }).click();
      expect(await tab.locator('#reference-info').textContent()).toBe('none');
    } finally {
      await tab.close();
      expect((await klein.stop()).code).toBe(0);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('masks from words: Preview shows the mask "the circle" gives, Apply sends the words, the node records them', async () => {
    await page.locator('#new-doc').click();
    await page.getByText(/^Document [0-9a-f]{8}$/).waitFor();
    await page.locator('#file').setInputFiles(FIXTURE);
    await page.locator('#canvas-wrap').waitFor();
    await waitUntil(page, "document.getElementById('image').naturalWidth === 128");
    await page.getByLabel('Where (words, instead of painting)').fill('the diamond');
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.getByRole('alert').getByText(/"the diamond" matches nothing in this image/).waitFor(); // shapes-128 has no diamond
    await page.getByRole('button', { name: 'Dismiss the error' }).click();

    await page.getByLabel('Where (words, instead of painting)').fill('the circle');
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.getByText(/The mask "the circle" gives: this is what will change/).waitFor();
    expect(await alphaAt(page, CIRCLE.x, CIRCLE.y)).toBeGreaterThan(200);
    expect(await alphaAt(page, SQUARE.x, SQUARE.y)).toBe(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'playground-mask-words.png') });

    await page.getByLabel('Instruction').fill('make the circle blue');
    await read(page, "document.getElementById('advanced').open = true"); // open or not, after the earlier tests
    await page.getByLabel('Steps').fill('4');
    await page.getByLabel('Variations').fill('1');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByText(/^Done in [\d.]+ s · seed \d+$/).waitFor();

    const key = await read<string>(page, "localStorage.getItem('layerloop.playground.documentKey')");
    const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: key });
    const { nodes } = await client.documents.history.query({ documentId });
    expect(nodes.map((n) => [n.kind, n.instruction])).toEqual([['source', null], ['edit', 'make the circle blue']]);
    expect(nodes[1].regions[0]).toMatchObject({ instruction: 'make the circle blue', maskText: 'the circle' });
    expect(nodes[1].regions[0].maskSha256).toMatch(/^[0-9a-f]{64}$/);

    // painting takes over from the words
    await paintAround(page, SQUARE);
    expect(await page.getByLabel('Where (words, instead of painting)').inputValue()).toBe('');
  });
});
