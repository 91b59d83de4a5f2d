import { captureActiveLayer, resultMask } from '../../../plugin-uxp/src/capture';
import { MESSAGES, UserError } from '../../../plugin-uxp/src/errors';
import { FakePhotoshop } from './fake-photoshop';
import { at, gradient, pixels16, pixels8, selection } from './fixtures';

/** a 40x30 canvas with a 20x10 opaque block at (10, 5) inside a transparent 30x20 layer region */
function docWithBlock(fake: FakePhotoshop, extra: Partial<Parameters<FakePhotoshop['addDocument']>[0]> = {}) {
  return fake.addDocument({
    title: 'poster.psd',
    width: 40,
    height: 30,
    layers: [{ name: 'art', pixels: pixels8(5, 0, 30, 20, (x, y) => (x >= 10 && x < 30 && y >= 5 && y < 15 ? gradient(x, y) : [0, 0, 0, 0])) }],
    ...extra,
  });
}

describe('captureActiveLayer: pixels', () => {
  it('uses the bounds getPixels returns (trimmed to the pixels) and maps data by them', async () => {
    const fake = new FakePhotoshop();
    docWithBlock(fake);
    const cap = await captureActiveLayer(fake);
    expect(cap.bounds).toEqual({ left: 10, top: 5, right: 30, bottom: 15 }); // half-open: 20x10
    expect([cap.width, cap.height]).toEqual([20, 10]);
    expect(cap.rgba.length).toBe(20 * 10 * 4);
    expect(at(cap.rgba, 20, 0, 0)).toEqual(gradient(10, 5));
    expect(at(cap.rgba, 20, 19, 9)).toEqual(gradient(29, 14));
    expect(cap.mask).toBeNull();
    expect(cap.colorProfile).toBe('sRGB IEC61966-2.1');
    expect(fake.liveImageData()).toBe(0);
  });

  it('reads inside one modal scope and writes nothing', async () => {
    const fake = new FakePhotoshop();
    const doc = docWithBlock(fake);
    await captureActiveLayer(fake);
    expect(fake.modalScopes).toBe(1);
    expect(doc.history).toEqual(['Open']);
  });

  it('converts a 16-bit document to 8-bit RGBA with exact values', async () => {
    const fake = new FakePhotoshop();
    const values: [number, number, number, number][] = [
      [0, 16384, 32768, 32768],
      [128, 64, 16320, 16384],
    ];
    fake.addDocument({ width: 2, height: 1, bitsPerChannel: 16, layers: [{ name: 'hdr', pixels: pixels16(0, 0, 2, 1, (x) => values[x]) }] });
    const cap = await captureActiveLayer(fake);
    expect(Array.from(cap.rgba)).toEqual([0, 128, 255, 255, 1, 0, 127, 128]);
    expect(fake.calls).toContain('getPixels');
    expect(fake.liveImageData()).toBe(0);
  });

  it('gives a Background layer (RGB, 3 components) full alpha', async () => {
    const fake = new FakePhotoshop();
    fake.addDocument({ width: 3, height: 2, layers: [{ name: 'Background', isBackground: true, pixels: pixels8(0, 0, 3, 2, gradient) }] });
    const cap = await captureActiveLayer(fake);
    expect(cap.bounds).toEqual({ left: 0, top: 0, right: 3, bottom: 2 });
    expect(at(cap.rgba, 3, 2, 1)).toEqual(gradient(2, 1));
  });

  it('clamps a layer that hangs off the canvas to the canvas', async () => {
    const fake = new FakePhotoshop();
    fake.addDocument({ width: 10, height: 10, layers: [{ name: 'big', pixels: pixels8(-5, -5, 20, 20, gradient) }] });
    const cap = await captureActiveLayer(fake);
    expect(cap.bounds).toEqual({ left: 0, top: 0, right: 10, bottom: 10 });
    expect(at(cap.rgba, 10, 0, 0)).toEqual(gradient(0, 0));
  });
});

describe('captureActiveLayer: selection -> mask', () => {
  it('crops a soft selection that lies partly outside the layer, keeping soft values', async () => {
    const fake = new FakePhotoshop();
    // selection (0,0)-(15,10): soft ramp; the layer's pixels are (10,5)-(30,15)
    docWithBlock(fake, { selection: selection({ left: 0, top: 0, right: 15, bottom: 10 }, (x, y) => 100 + x + y) });
    const cap = await captureActiveLayer(fake);
    const mask = cap.mask!;
    expect(mask).not.toBeNull();
    expect(mask.length).toBe(20 * 10);
    // inside the overlap (10..14, 5..9): the selection's own values
    expect(mask[0]).toBe(100 + 10 + 5);
    expect(mask[4 * 1 + 0]).toBe(100 + 14 + 5);
    expect(mask[4 * 20 + 4]).toBe(100 + 14 + 9);
    // outside the selection: 0
    expect(mask[5]).toBe(0);
    expect(mask[5 * 20]).toBe(0);
    expect(fake.liveImageData()).toBe(0);
  });

  it('treats no selection and a fully selected layer as a global edit', async () => {
    const fake = new FakePhotoshop();
    docWithBlock(fake, { selection: selection({ left: 0, top: 0, right: 40, bottom: 30 }, () => 255) });
    expect((await captureActiveLayer(fake)).mask).toBeNull();
  });

  it('says so when the selection misses the layer', async () => {
    const fake = new FakePhotoshop();
    docWithBlock(fake, { selection: selection({ left: 0, top: 20, right: 5, bottom: 30 }, () => 255) });
    await expect(captureActiveLayer(fake)).rejects.toThrow(MESSAGES.selectionMisses);
    expect(fake.liveImageData()).toBe(0);
  });

  it('says so when the selection overlaps the layer bounds only with zeros', async () => {
    const fake = new FakePhotoshop();
    const sel = selection({ left: 0, top: 0, right: 40, bottom: 30 }, (x, y) => (x < 5 || y > 25 ? 200 : 0));
    docWithBlock(fake, { selection: sel });
    await expect(captureActiveLayer(fake)).rejects.toThrow(MESSAGES.selectionMisses);
  });
});

describe('captureActiveLayer: the layer’s own mask and look', () => {
  it('reads the user mask over the layer (255 where it has no data) and the opacity and blend mode', async () => {
    const fake = new FakePhotoshop();
    const mask = selection({ left: 12, top: 0, right: 40, bottom: 30 }, (x) => (x < 20 ? 0 : 200));
    docWithBlock(fake, {
      layers: [{ name: 'art', look: { opacity: 60, fillOpacity: 80, blendMode: 'screen' }, mask, pixels: pixels8(5, 0, 30, 20, (x, y) => (x >= 10 && x < 30 && y >= 5 && y < 15 ? gradient(x, y) : [0, 0, 0, 0])) }],
    });
    const cap = await captureActiveLayer(fake);
    expect(cap.look).toEqual({ opacity: 60, fillOpacity: 80, blendMode: 'screen' });
    expect(Array.from(cap.layerMask!.subarray(0, 20))).toEqual([255, 255, ...new Array(8).fill(0), ...new Array(10).fill(200)]);
    expect(cap.mask).toBeNull();
    expect(resultMask(cap)).toBe(cap.layerMask);
    expect(resultMask({ mask: new Uint8Array([255, 128, 0]), layerMask: new Uint8Array([255, 255, 100]) })).toEqual(new Uint8Array([255, 128, 0]));
    expect(fake.liveImageData()).toBe(0);
  });
});

describe('captureActiveLayer: what cannot be edited', () => {
  const cases: [string, (f: FakePhotoshop) => void, RegExp | string][] = [
    ['no document', () => undefined, MESSAGES.noDocument],
    ['a text layer', (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'Title', kind: 'text' }] }), /"Title" is a text layer: rasterize it/],
    ['a smart object', (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'Logo', kind: 'smartObject' }] }), /"Logo" is a smart object/],
    ['an adjustment layer', (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'Curves 1', kind: 'curves' }] }), /adjustment layer \(curves\) and holds no pixels/],
    ['a fill layer', (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'Color Fill 1', kind: 'solidColor' }] }), /fill layer/],
    ['a group', (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'G', children: [{ name: 'inner', pixels: pixels8(0, 0, 4, 4, gradient) }] }] }), /"G" is a group/],
    ['an empty layer', (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'Layer 1' }] }), MESSAGES.emptyLayer],
    ['a transparent layer', (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'Layer 1', pixels: pixels8(0, 0, 4, 4, () => [9, 9, 9, 0]) }] }), MESSAGES.emptyLayer],
    ['a layer off the canvas', (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'off', pixels: pixels8(10, 10, 2, 2, gradient) }] }), MESSAGES.outsideCanvas],
    ['no selected layer', (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'a', pixels: pixels8(0, 0, 4, 4, gradient) }], active: [] }), MESSAGES.noLayer],
    [
      'two selected layers',
      (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'a', pixels: pixels8(0, 0, 4, 4, gradient) }, { name: 'b', pixels: pixels8(0, 0, 4, 4, gradient) }], active: ['a', 'b'] }),
      MESSAGES.severalLayers,
    ],
    ['a CMYK document', (f) => f.addDocument({ title: 'print.psd', width: 4, height: 4, mode: 'CMYKColorMode', layers: [{ name: 'a', pixels: pixels8(0, 0, 4, 4, gradient) }] }), /"print.psd" is not an RGB document/],
    [
      'a 32-bit (HDR) document',
      (f) => f.addDocument({ title: 'hdr.psd', width: 4, height: 4, bitsPerChannel: 32, layers: [{ name: 'a', pixels: pixels8(0, 0, 4, 4, gradient) }] }),
      '"hdr.psd" is a 32-bit (HDR) document: convert it with Image > Mode > 16 Bits/Channel (or 8), then try again.',
    ],
    [
      'a clipped layer',
      (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'shadow', clipped: true, pixels: pixels8(0, 0, 4, 4, gradient) }] }),
      '"shadow" is clipped to the layer below it: release the clipping mask (Layer > Release Clipping Mask) or merge the two, then try again.',
    ],
    [
      'a layer with a vector mask',
      (f) => f.addDocument({ width: 4, height: 4, layers: [{ name: 'cut', vectorMask: true, pixels: pixels8(0, 0, 4, 4, gradient) }] }),
      '"cut" has a vector mask, which plugins cannot read: rasterize it (Layer > Rasterize > Vector Mask), then try again.',
    ],
  ];
  it.each(cases)('%s gives a clear message', async (_name, setup, message) => {
    const fake = new FakePhotoshop();
    setup(fake);
    const err = await captureActiveLayer(fake).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(message);
    expect(fake.calls).not.toContain('getPixels');
  });

  it('reports an image over the size limits before uploading', async () => {
    const fake = new FakePhotoshop();
    fake.addDocument({ width: 90, height: 10, layers: [{ name: 'strip', pixels: pixels8(0, 0, 90, 10, gradient) }] });
    await expect(captureActiveLayer(fake)).rejects.toThrow(/long side may be at most 8 times/);
    expect(fake.liveImageData()).toBe(0);
  });
});
