/**
 * The shipped FLUX.2 [klein] model (models/tiny-flux2-klein, trained by tools/tiny-klein/train.py) through the
 * TypeScript engine and through the server started with `--model tiny-flux2-klein`, on held-out shapes-world
 * cases (test/fixtures/heldout): a masked recolour takes the named colour and leaves every pixel outside the mask
 * as it was; previews come from the fitted latent->RGB map and look like the result; latent iteration keeps the
 * image. Floors are the model's measured level with a margin (models/tiny-flux2-klein/EVAL.md has the full figures).
 */
import * as path from 'node:path';
import { editImage, type EditSource } from '../../server/edit/edit-image';
import { loadModel } from '../../server/engine/families';
import type { ModelAdapter } from '../../server/engine/family';
import { localEngine, type TensorEngine } from '../../server/engine/local';
import { SAMPLERS } from '../../server/engine/samplers';
import { decodeImage, encodePng, fromModelTensor, maskToImage, resizeImage, toModelTensor, type RgbaImage } from '../../server/imaging/image';
import { changedPixels, loadHeldout, meanColour, nearestColour, psnr, type HeldoutCase } from '../../bench/lib/heldout';
import { makeClient, startServer, upload, waitForJob, type Client, type ServerProcess } from '../support/server';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'models', 'tiny-flux2-klein');

describe('tiny-flux2-klein through the TypeScript engine (held-out cases)', () => {
  let model: ModelAdapter;
  let engine: TensorEngine;
  let palette: Record<string, [number, number, number]>;
  let cases: HeldoutCase[];
  beforeAll(async () => {
    const timer = { onnxMs: 0, calls: 0 };
    model = await loadModel(MODEL, { device: 'cpu', timer, log: () => {} });
    engine = localEngine(model, timer);
    ({ palette, cases } = await loadHeldout());
  });
  afterAll(async () => model?.release());

  it('loads as the distilled klein family at 128 px, guidance default 4', () => {
    expect(model.info).toMatchObject({ name: 'tiny-flux2-klein', family: 'FLUX.2 [klein]', nativeSize: 128, defaultTextScale: 4, readsReferences: true });
    expect(model.info.scheduleSummary).toMatch(/distilled/);
  });

  it('a masked recolour moves the shape toward the named colour in most cases and never changes a pixel outside the mask', async () => {
    const recolour = cases.filter((c) => c.op === 'recolour');
    expect(recolour.length).toBe(24);
    const distance = (a: number[], b: number[]) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    let toward = 0;
    for (const [k, c] of recolour.entries()) {
      const out = (await editImage(engine, { kind: 'pixels', image: c.source }, [{ instruction: c.instruction, mask: c.mask }], { steps: 20, seed: k })).variations[0].image;
      const named = palette[c.colour!];
      if (distance(meanColour(out, c.interior), named) < distance(meanColour(c.source, c.interior), named) - 10) toward++;
      expect([c.id, changedPixels(out, c.source, (i) => c.mask[i] === 0)]).toEqual([c.id, 0]);
    }
    // measured 17 / 24 (it reaches the named colour itself in 1 / 24: EVAL.md, bench/RESULTS.md)
    expect(toward / recolour.length).toBeGreaterThanOrEqual(MASKED_TOWARD_FLOOR);
  });

  it('a masked background edit takes the named colour (measured 8 / 8)', async () => {
    const background = cases.filter((c) => c.op === 'background');
    let hits = 0;
    for (const [k, c] of background.entries()) {
      const out = (await editImage(engine, { kind: 'pixels', image: c.source }, [{ instruction: c.instruction, mask: c.mask }], { steps: 20, seed: k })).variations[0].image;
      if (nearestColour(meanColour(out, c.interior), palette) === c.colour) hits++;
      expect([c.id, changedPixels(out, c.source, (i) => c.mask[i] === 0)]).toEqual([c.id, 0]);
    }
    expect(hits).toBeGreaterThanOrEqual(7);
  });

  it('previews come from the fitted latent->RGB map: 1/8 of the working size; on an encoded image they look like it', async () => {
    const c = cases.find((x) => x.op === 'recolour')!;
    const previews: RgbaImage[] = [];
    await editImage(engine, { kind: 'pixels', image: c.source }, [{ instruction: c.instruction, mask: null }], { steps: 20, seed: 1, previewEvery: 1 }, { onProgress: (p) => p.preview && previews.push(p.preview) });
    expect(previews).toHaveLength(19); // every step but the last
    expect(previews.map((p) => [p.width, p.height])).toEqual(Array(19).fill([16, 16]));
    // the map on the VAE's own encoding of held-out images, against them averaged to 16x16 (measured 16.5-21.5 dB);
    // on this model's generated latents it is far worse (EVAL.md notes)
    const grid = { channels: 128, height: 8, width: 8 };
    for (const x of cases.slice(0, 4)) {
      const cond = await model.condition({ kind: 'image', image: { data: toModelTensor(x.source), width: 128, height: 128 } }, [''], grid, model.schedule(SAMPLERS.euler, 4, grid));
      const p = await model.preview(cond.source, grid);
      expect([x.id, psnr(fromModelTensor(p.data, 16, 16), await resizeImage(x.source, 16, 16)) > PREVIEW_PSNR_FLOOR]).toEqual([x.id, true]);
    }
  });

  it('ten empty-instruction edits continue by latent iteration (nothing decoded or re-encoded between them); the drift stays bounded (bench/RESULTS.md has it per round)', async () => {
    const c = cases.find((x) => x.op === 'identity')!;
    let source: EditSource = { kind: 'pixels', image: c.source };
    let last: RgbaImage = c.source;
    for (let r = 0; r < 10; r++) {
      const res = await editImage(engine, source, [{ instruction: '', mask: null }], { steps: 4, seed: r });
      expect(res.conditioning).toBe(r === 0 ? 'pixels' : 'latent');
      const v = res.variations[0];
      last = v.image;
      source = { kind: 'latent', image: v.image, latent: v.latent };
    }
    expect(psnr(last, c.source)).toBeGreaterThan(ITERATION_PSNR_FLOOR);
  });
});

describe('server --model tiny-flux2-klein', () => {
  let server: ServerProcess;
  let client: Client;
  beforeAll(async () => {
    server = await startServer({ args: ['--model', 'tiny-flux2-klein'] });
    client = makeClient(server.url);
  });
  afterAll(async () => server?.stop());

  it('serves the shipped klein: health and models.list name the family; a masked background edit changes only the background, to the named colour', async () => {
    const health = await client.health.query();
    expect(health.model).toMatchObject({ name: 'tiny-flux2-klein', family: 'FLUX.2 [klein]', readsReferences: true, defaultTextScale: 4 });
    const { loaded, models } = await client.models.list.query();
    expect(loaded).toMatchObject({ name: 'tiny-flux2-klein', family: 'FLUX.2 [klein]' });
    expect(models).toEqual(expect.arrayContaining([
      expect.objectContaining({ name: 'tiny-flux2-klein', family: 'FLUX.2 [klein]', loaded: true }),
      expect.objectContaining({ name: 'tiny-pix2pix', family: 'InstructPix2Pix', loaded: false }),
    ]));

    const { palette, cases } = await loadHeldout();
    const c = cases.find((x) => x.id === SERVER_CASE)!;
    const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'klein-shipped' });
    const source = await upload(server.url, new Uint8Array(await encodePng(c.source)));
    const mask = await upload(server.url, new Uint8Array(await encodePng(maskToImage(c.mask, c.source.width, c.source.height))));
    const { jobId } = await client.edits.create.mutate({
      documentId, parent: { kind: 'source', imageSha256: source.sha256 }, regions: [{ instruction: c.instruction, maskSha256: mask.sha256 }], options: { seed: 0 },
    });
    const snap = await waitForJob(client, jobId, undefined, 120_000);
    expect(snap.state).toBe('succeeded');
    const res = await fetch(`${server.url}/v1/blobs/${snap.result!.resultSha256s[0]}`);
    const out = await decodeImage(new Uint8Array(await res.arrayBuffer()));
    expect(changedPixels(out, c.source, (i) => c.mask[i] === 0)).toBe(0);
    expect(nearestColour(meanColour(out, c.interior), palette)).toBe(c.colour);
    expect(nearestColour(meanColour(c.source, c.interior), palette)).not.toBe(c.colour);
    const { nodes } = await client.documents.history.query({ documentId });
    expect(nodes.find((n) => n.id === snap.result!.editIds[0])!.options).toMatchObject({ model: 'tiny-flux2-klein' });
  });
});

// floors: the shipped model's measured level with a margin (models/tiny-flux2-klein/EVAL.md, bench/RESULTS.md)
const MASKED_TOWARD_FLOOR = 0.6;
const PREVIEW_PSNR_FLOOR = 15;
const ITERATION_PSNR_FLOOR = 11;
const SERVER_CASE = 'background-00';
