import { DocumentRecords, XMP_DOCUMENT_KEY, XMP_LAYER_EDITS } from '../../../plugin-uxp/src/identity';
import { layerName, placeLayers, type PlaceItem } from '../../../plugin-uxp/src/place';
import { FakePhotoshop, MODAL_ERROR, type FakeDocument } from './fake-photoshop';
import { gradient, pixels8 } from './fixtures';

const UUIDS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'];

function setup(opts: { group?: boolean } = {}) {
  const fake = new FakePhotoshop();
  const source = { name: 'photo', pixels: pixels8(2, 3, 4, 2, gradient) };
  const doc = fake.addDocument({
    width: 10,
    height: 8,
    layers: opts.group
      ? [{ name: 'top', pixels: pixels8(0, 0, 1, 1, gradient) }, { name: 'G', children: [source, { name: 'under', pixels: pixels8(0, 0, 1, 1, gradient) }] }]
      : [{ name: 'top', pixels: pixels8(0, 0, 1, 1, gradient) }, source, { name: 'Background', isBackground: true, pixels: pixels8(0, 0, 10, 8, gradient) }],
    active: ['photo'],
  });
  let n = 0;
  const records = new DocumentRecords(fake, () => UUIDS[n++], 'session');
  return { fake, doc, records, sourceId: fake.layerByName(doc, 'photo').id };
}

function item(patch: Partial<PlaceItem> = {}): PlaceItem {
  const rgba = new Uint8Array(4 * 2 * 4).map((_, i) => (i * 9) & 255);
  return {
    editId: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa',
    name: 'make it red',
    rgba,
    width: 4,
    height: 2,
    left: 2,
    top: 3,
    colorProfile: 'sRGB IEC61966-2.1',
    mask: new Uint8Array([0, 64, 128, 255, 255, 255, 0, 1]),
    look: null,
    ...patch,
  };
}

const asDoc = (fake: FakePhotoshop, doc: FakeDocument) => fake.hostDocument(doc);

describe('placeLayers', () => {
  it('puts a new pixel layer directly above the source, at the exact bounds, with the layer mask, as one history state', async () => {
    const { fake, doc, records, sourceId } = setup();
    const it1 = item();
    const out = await placeLayers(fake, records, asDoc(fake, doc), sourceId, [it1], 'layerloop: make it red');
    expect(fake.stack(doc)).toEqual(['top', 'make it red', 'photo', 'Background']);
    const layer = fake.layerByName(doc, 'make it red');
    expect(out.layerIds).toEqual([layer.id]);
    expect(layer.pixels).toMatchObject({ left: 2, top: 3, width: 4, height: 2 });
    expect(Array.from(layer.pixels!.data)).toEqual(Array.from(it1.rgba));
    expect(layer.mask).toEqual({ bounds: { left: 2, top: 3, right: 6, bottom: 5 }, data: it1.mask });
    expect(doc.history).toEqual(['Open', 'layerloop: make it red']);
    expect(doc.activeLayerIds).toEqual([layer.id]);
    expect(fake.liveImageData()).toBe(0);
    expect(out.warning).toBeNull();
    // and its record, in the same undo step
    expect(JSON.parse(doc.xmp.get(XMP_LAYER_EDITS)!)).toEqual({ v: 1, layers: { [layer.id]: it1.editId }, places: { [it1.editId]: [2, 3] } });
    expect(doc.xmp.get(XMP_DOCUMENT_KEY)).toBe(UUIDS[0]);
  });

  it('one undo removes the layer, its mask and its record together', async () => {
    const { fake, doc, records, sourceId } = setup();
    await placeLayers(fake, records, asDoc(fake, doc), sourceId, [item()], 'layerloop: x');
    fake.undo(doc);
    expect(fake.stack(doc)).toEqual(['top', 'photo', 'Background']);
    expect(doc.xmp.size).toBe(0);
    expect(doc.history).toEqual(['Open']);
  });

  it('stays inside the source layer\'s group', async () => {
    const { fake, doc, records, sourceId } = setup({ group: true });
    await placeLayers(fake, records, asDoc(fake, doc), sourceId, [item()], 'layerloop: x');
    expect(fake.stack(doc)).toEqual(['top', 'G', 'G/make it red', 'G/photo', 'G/under']);
  });

  it('places several variations each as its own layer, stacked, in one undo step', async () => {
    const { fake, doc, records, sourceId } = setup();
    const items = [item({ editId: 'e1000000-0000-4000-8000-000000000000', name: 'v #1' }), item({ editId: 'e2000000-0000-4000-8000-000000000000', name: 'v #2', mask: null })];
    const out = await placeLayers(fake, records, asDoc(fake, doc), sourceId, items, 'layerloop: v');
    expect(fake.stack(doc)).toEqual(['top', 'v #2', 'v #1', 'photo', 'Background']);
    expect(fake.layerByName(doc, 'v #2').mask).toBeNull();
    expect(doc.history).toEqual(['Open', 'layerloop: v']);
    expect(doc.activeLayerIds).toEqual([out.layerIds[1]]);
  });

  it('rolls everything back when a step fails, and disposes what it made', async () => {
    const { fake, doc, records, sourceId } = setup();
    const bad = item();
    const original = fake.putLayerMask.bind(fake);
    fake.putLayerMask = async (o) => {
      await original(o);
      throw new Error('mask failed');
    };
    await expect(placeLayers(fake, records, asDoc(fake, doc), sourceId, [bad], 'layerloop: x')).rejects.toThrow('mask failed');
    expect(fake.stack(doc)).toEqual(['top', 'photo', 'Background']);
    expect(doc.history).toEqual(['Open']);
    expect(fake.liveImageData()).toBe(0);
  });

  it('refuses when the source layer is gone, without writing', async () => {
    const { fake, doc, records } = setup();
    await expect(placeLayers(fake, records, asDoc(fake, doc), 999, [item()], 'x')).rejects.toThrow(/closed or deleted/);
    expect(doc.history).toEqual(['Open']);
  });

  it('checks sizes before touching the document', async () => {
    const { fake, doc, records, sourceId } = setup();
    await expect(placeLayers(fake, records, asDoc(fake, doc), sourceId, [item({ rgba: new Uint8Array(3) })], 'x')).rejects.toThrow(/needs 32 RGBA bytes/);
    await expect(placeLayers(fake, records, asDoc(fake, doc), sourceId, [item({ mask: new Uint8Array(3) })], 'x')).rejects.toThrow(/needs 8 values/);
    expect(fake.modalScopes).toBe(0);
  });
});

describe('the fake enforces the modal scope', () => {
  it('throws on writes outside executeAsModal and on nested scopes', async () => {
    const { fake, doc } = setup();
    await expect(fake.createPixelLayer(doc.id, 'x')).rejects.toThrow(MODAL_ERROR);
    await expect(fake.executeAsModal('a', () => fake.executeAsModal('b', async () => 1))).rejects.toThrow(/Photoshop is busy/);
  });

  it('records one history state per write outside a suspension', async () => {
    const { fake, doc } = setup();
    await fake.executeAsModal('raw', async () => {
      const l = await fake.createPixelLayer(doc.id, 'x');
      await fake.moveLayerAbove(doc.id, l.id, fake.layerByName(doc, 'photo').id);
    });
    expect(doc.history).toEqual(['Open', 'New Layer', 'Move']);
  });
});

it('names layers after the instruction', () => {
  expect(layerName('  make   the sky\nstormy ', null)).toBe('make the sky stormy');
  expect(layerName('x', 2)).toBe('x #3');
  expect(layerName('', null)).toBe('layerloop edit');
  const long = layerName('a'.repeat(200), 0);
  expect(long.length).toBe(80);
  expect(long.endsWith('… #1')).toBe(true);
});
