import { pasteMask, placeEdit, type MaskPlane, type PlaceInput } from '../../../server/edit/compose';
import { upsampleWithDetail } from '../../../server/edit/detail';
import { cropMask, type Geometry } from '../../../server/edit/geometry';
import { featherMask } from '../../../server/engine/masks';
import { compositeInto, createImage, cropImage, resizeImage, type RgbaImage } from '../../../server/imaging/image';

/**
 * Deterministic pixels: gradients plus per-pixel grain (detail a working size cannot hold), coarse on the left
 * third and fine elsewhere (so the texture's amplitude depends on which pixels are counted), alpha varying.
 */
function textured(w: number, h: number, seed: number): RgbaImage {
  const img = createImage(w, h);
  for (let i = 0; i < w * h; i++) {
    let v = Math.imul(i ^ seed, 0x85ebca6b);
    v ^= v >>> 13;
    const x = i % w;
    const y = Math.floor(i / w);
    const grain = x < w / 3 ? ((v >>> 0) % 31) - 15 : ((v >>> 0) % 7) - 3;
    const rgb = [(x * 255) / w + grain, (y * 255) / h - grain, x < w / 2 ? 250 + grain : 5 + grain];
    img.data.set([...rgb.map((c) => Math.max(0, Math.min(255, Math.round(c)))), 100 + (i % 156)], i * 4);
  }
  return img;
}

/** A soft disc mask [h * w]: 1 inside, a 5-pixel ramp, 0 outside. */
function disc(w: number, h: number, cx: number, cy: number, r: number): Float32Array {
  const m = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) m[y * w + x] = Math.max(0, Math.min(1, (r - Math.hypot(x - cx, y - cy)) / 5));
  return m;
}

/** The passes one by one, as an edit composited before they were fused: the reference placeEdit must equal. */
async function passes(p: PlaceInput): Promise<RgbaImage> {
  const { source, geometry: g } = p;
  const crop = cropImage(source, g.x, g.y, g.width, g.height);
  return compositeInto(source, await upsampleWithDetail(p.work, crop, p.cropWork), g.x, g.y, pasteMask(p.masks, p.reach, p.spread, source.width, source.height, g));
}

async function input(source: RgbaImage, masks: (Float32Array | null)[], g: Geometry, reach: MaskPlane | null = null, spread = 0): Promise<PlaceInput> {
  const cropWork = await resizeImage(cropImage(source, g.x, g.y, g.width, g.height), g.workWidth, g.workHeight);
  // an edit that keeps some structure and changes some: channels swapped on the left half, flattened on the right
  const work = createImage(g.workWidth, g.workHeight, new Uint8Array(cropWork.data));
  for (let i = 0; i < g.workWidth * g.workHeight; i++) {
    const k = i * 4;
    if (i % g.workWidth < g.workWidth / 2) work.data.set([work.data[k + 2], work.data[k], work.data[k + 1]], k);
    else work.data.set([128, 128, 128], k);
  }
  return { source, masks, geometry: g, cropWork, work, reach, spread };
}

describe('placeEdit: detail transfer and compositing fused', () => {
  const W = 200;
  const H = 150;
  const source = textured(W, H, 7);

  test('equals the passes byte for byte: a global edit of a layer larger than the working size', async () => {
    const p = await input(source, [null], { x: 0, y: 0, width: W, height: H, workWidth: 64, workHeight: 48 });
    const placed = await placeEdit(p);
    expect(Buffer.from(placed.data).equals(Buffer.from((await passes(p)).data))).toBe(true);
    expect(Buffer.from(placed.data).equals(Buffer.from(source.data))).toBe(false);
  });

  test('equals the passes byte for byte: two soft regions in a context crop, widened by a spread reach', async () => {
    // the regions sit in the coarse grain, most of the crop in the fine one
    const g = { x: 15, y: 21, width: 120, height: 100, workWidth: 32, workHeight: 32 };
    const reach = { data: Float32Array.from({ length: 16 }, (_, i) => (i === 5 ? 0.5 : 0)), width: 4, height: 4 };
    const p = await input(source, [disc(W, H, 42, 55, 20), disc(W, H, 55, 95, 15)], g, reach, 0.3);
    const placed = await placeEdit(p);
    expect(Buffer.from(placed.data).equals(Buffer.from((await passes(p)).data))).toBe(true);
  });

  test('equals the passes byte for byte: a crop no larger than the working size (no detail to restore)', async () => {
    const p = await input(source, [disc(W, H, 100, 75, 30)], { x: 50, y: 30, width: 96, height: 90, workWidth: 96, workHeight: 96 });
    const placed = await placeEdit(p);
    expect(Buffer.from(placed.data).equals(Buffer.from((await passes(p)).data))).toBe(true);
  });

  test('keeps every pixel outside the paste mask, and every alpha, bit-identical to the source', async () => {
    const mask = disc(W, H, 90, 70, 30);
    const p = await input(source, [mask], { x: 30, y: 10, width: 128, height: 128, workWidth: 32, workHeight: 32 });
    const placed = await placeEdit(p);
    let changed = 0;
    let keptOutside = 0;
    let keptAlpha = 0;
    for (let i = 0; i < W * H; i++) {
      const same = [0, 1, 2, 3].every((c) => placed.data[i * 4 + c] === source.data[i * 4 + c]);
      if (mask[i] === 0) keptOutside += same ? 1 : 0;
      else changed += same ? 0 : 1;
      keptAlpha += placed.data[i * 4 + 3] === source.data[i * 4 + 3] ? 1 : 0;
    }
    expect(keptOutside).toBe(mask.filter((v) => v === 0).length);
    expect(keptAlpha).toBe(W * H);
    expect(changed).toBeGreaterThan(1000);
  });
});

describe('pasteMask over the crop', () => {
  const W = 60;
  const H = 40;
  const masks = [disc(W, H, 20, 15, 12), disc(W, H, 40, 25, 9)];
  const union = masks[0].map((v, i) => Math.max(v, masks[1][i]));
  const wholeFeather = featherMask(union, W, H, 1).map((v, i) => Math.min(union[i], v));

  test('is exactly the crop of the union feathered over the whole source, for crops cutting through the mask', () => {
    for (const g of [
      { x: 0, y: 0, width: W, height: H, workWidth: 32, workHeight: 32 },
      { x: 13, y: 9, width: 20, height: 17, workWidth: 32, workHeight: 32 },
      { x: 0, y: 20, width: 31, height: 20, workWidth: 32, workHeight: 32 },
      { x: 35, y: 0, width: 25, height: 12, workWidth: 32, workHeight: 32 },
    ]) {
      expect(Array.from(pasteMask(masks, null, 0, W, H, g)!)).toEqual(Array.from(cropMask(wholeFeather, W, g)));
    }
  });

  test('is null for a global edit, and widened by the reach only when spread > 0', () => {
    const g = { x: 10, y: 5, width: 30, height: 30, workWidth: 32, workHeight: 32 };
    expect(pasteMask([masks[0], null], null, 0, W, H, g)).toBeNull();
    const reach = { data: new Float32Array(4).fill(0.25), width: 2, height: 2 };
    const plain = pasteMask(masks, reach, 0, W, H, g)!;
    const widened = pasteMask(masks, reach, 0.5, W, H, g)!;
    expect(Array.from(plain)).toEqual(Array.from(cropMask(wholeFeather, W, g)));
    expect(Array.from(widened)).toEqual(Array.from(plain).map((v) => Math.max(v, 0.25)));
  });
});
