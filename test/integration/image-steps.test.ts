/**
 * The image workers (server/edit/image-steps.ts, the built dist/image-worker.js): the same bytes as the steps
 * in-process, inputs shared rather than copied per step, errors and dead workers reported as task failures.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { types } from 'node:util';
import type { PlaceInput } from '../../server/edit/compose';
import { ImageWorkers, inProcessSteps, imageStepsFor, type EditPixels } from '../../server/edit/image-steps';
import { builtBundle } from '../../server/bundles';
import { createImage, type RgbaImage } from '../../server/imaging/image';

function textured(w: number, h: number): RgbaImage {
  const img = createImage(w, h);
  for (let i = 0; i < w * h; i++) {
    let v = Math.imul(i, 0x85ebca6b);
    v ^= v >>> 13;
    const grain = ((v >>> 0) % 25) - 12;
    const x = i % w;
    img.data.set([Math.max(0, Math.min(255, (x * 255) / w + grain)), 128 + grain, 60, 255], i * 4);
  }
  return img;
}

function disc(w: number, h: number, cx: number, cy: number, r: number): Float32Array {
  const m = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) m[y * w + x] = Math.max(0, Math.min(1, (r - Math.hypot(x - cx, y - cy)) / 4));
  return m;
}

const same = (a: RgbaImage, b: RgbaImage) => a.width === b.width && a.height === b.height && Buffer.from(a.data).equals(Buffer.from(b.data));

describe('image workers', () => {
  let workers: ImageWorkers;
  beforeAll(() => {
    workers = new ImageWorkers(2);
  });
  afterAll(async () => workers.close());

  const W = 400;
  const H = 300;
  const pixels: EditPixels = { source: textured(W, H), masks: [disc(W, H, 130, 110, 60), disc(W, H, 210, 160, 40)] };

  it('prepare and place give the bytes the steps give in-process', async () => {
    const shared = await workers.share(pixels);
    const request = { workSide: 128, sizeMultiple: 32 };
    const [here, there] = await Promise.all([inProcessSteps.prepare({ ...pixels, ...request }), workers.prepare({ ...shared, ...request })]);
    expect(there.geometry).toEqual(here.geometry);
    expect(same(there.cropWork, here.cropWork)).toBe(true);
    expect(there.workMasks.map((m) => Array.from(m!))).toEqual(here.workMasks.map((m) => Array.from(m!)));

    const work = createImage(there.cropWork.width, there.cropWork.height, there.cropWork.data.map((v, i) => (i % 4 === 0 ? 255 - v : v)));
    const reach = { data: Float32Array.from({ length: 16 * 16 }, (_, i) => (i % 16) / 32), width: 16, height: 16 };
    const place: Omit<PlaceInput, 'source' | 'masks'> = { geometry: here.geometry, cropWork: here.cropWork, work, reach, spread: 0.2 };
    // two variations at once: both workers busy, each reading the one shared copy
    const placed = await Promise.all([workers.place({ ...shared, ...place }), workers.place({ ...shared, ...place, spread: 0 })]);
    expect(same(placed[0], await inProcessSteps.place({ ...pixels, ...place }))).toBe(true);
    expect(same(placed[1], await inProcessSteps.place({ ...pixels, ...place, spread: 0 }))).toBe(true);
    expect(same(placed[0], placed[1])).toBe(false);
  });

  it('copies the pixels into shared memory once: shared arrays pass through as they are', async () => {
    const shared = await workers.share(pixels);
    expect(types.isSharedArrayBuffer(shared.source.data.buffer)).toBe(true);
    expect(shared.masks.every((m) => m && types.isSharedArrayBuffer(m.buffer))).toBe(true);
    expect(Buffer.from(shared.source.data).equals(Buffer.from(pixels.source.data))).toBe(true);
    expect(Buffer.from(shared.masks[1]!.buffer).equals(Buffer.from(pixels.masks[1]!.buffer))).toBe(true);
    const again = await workers.share(shared);
    expect(again.source.data).toBe(shared.source.data);
    expect(again.masks[0]).toBe(shared.masks[0]);
  });

  it("rejects with the step's own message", async () => {
    const empty = { source: pixels.source, masks: [new Float32Array(W * H)] };
    await expect(workers.prepare({ ...(await workers.share(empty)), workSide: 128, sizeMultiple: 32 })).rejects.toThrow(/the mask is empty: paint or select the area to edit/);
  });

  it('fails the task of a worker that dies, and the next task gets a new worker', async () => {
    // a worker that exits on its first message the first time it is started, and is the real one after that
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-image-worker-'));
    const marker = path.join(dir, 'died-once');
    const file = path.join(dir, 'worker.js');
    fs.writeFileSync(
      file,
      `const fs = require('node:fs');
if (fs.existsSync(${JSON.stringify(marker)})) require(${JSON.stringify(builtBundle('image-worker.js'))});
else require('node:worker_threads').parentPort.once('message', () => { fs.writeFileSync(${JSON.stringify(marker)}, ''); process.exit(3); });`,
    );
    const flaky = new ImageWorkers(1, file);
    const request = { ...(await flaky.share(pixels)), workSide: 128, sizeMultiple: 32 };
    await expect(flaky.prepare(request)).rejects.toThrow(/the image worker failed \(it exited with code 3\)/);
    expect((await flaky.prepare(request)).geometry).toMatchObject({ width: W, height: H });
    await flaky.close();
    await expect(flaky.prepare(request)).rejects.toThrow(/the image workers were closed/);
  });

  it('runs layers larger than the working area in the workers, the others in-process', () => {
    expect(imageStepsFor(128 * 128, 128 * 128)).toBe(inProcessSteps);
    expect(imageStepsFor(320 * 224, 128 * 128)).toBeInstanceOf(ImageWorkers);
    expect(imageStepsFor(4096 * 4096, 128 * 128)).toBe(imageStepsFor(320 * 224, 128 * 128)); // one pool per process
  });
});
