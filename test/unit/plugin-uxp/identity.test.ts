import { DocumentRecords, XMP_DOCUMENT_KEY, XMP_LAYER_EDITS, parseEditRecords } from '../../../plugin-uxp/src/identity';
import { placeLayers, type PlaceItem } from '../../../plugin-uxp/src/place';
import { FakePhotoshop, type FakeDocumentSpec } from './fake-photoshop';
import { gradient, pixels8 } from './fixtures';

const KEY = '0b7f5c2e-1d3a-4c5b-9e8f-a1b2c3d4e5f6';
const EDIT = 'e1000000-0000-4000-8000-000000000001';

function setup(xmp: FakeDocumentSpec['xmp'] = 'supported') {
  const fake = new FakePhotoshop();
  const doc = fake.addDocument({ width: 8, height: 8, xmp, layers: [{ name: 'photo', pixels: pixels8(1, 1, 4, 4, gradient) }] });
  const uuids = [KEY, '99999999-9999-4999-8999-999999999999'];
  const records = new DocumentRecords(fake, () => uuids.shift()!, 'sess1');
  return { fake, doc, records, sourceId: fake.layerByName(doc, 'photo').id };
}

const item = (editId = EDIT): PlaceItem => ({
  editId,
  name: 'result',
  rgba: new Uint8Array(4 * 4 * 4).fill(200),
  width: 4,
  height: 4,
  left: 1,
  top: 1,
  colorProfile: '',
  mask: null,
  look: null,
});

describe('document identity', () => {
  it('reads the uuid from the document XMP', async () => {
    const { fake, doc, records } = setup();
    doc.xmp.set(XMP_DOCUMENT_KEY, KEY);
    expect(await records.identify(fake.hostDocument(doc))).toEqual({ key: KEY, persistent: true, stored: true });
  });

  it('chooses a uuid once per document and writes it with the first result', async () => {
    const { fake, doc, records, sourceId } = setup();
    const first = await records.identify(fake.hostDocument(doc));
    expect(first).toEqual({ key: KEY, persistent: true, stored: false });
    expect(await records.identify(fake.hostDocument(doc))).toEqual(first); // same key until written
    expect(doc.xmp.has(XMP_DOCUMENT_KEY)).toBe(false); // reading the id changes nothing
    await placeLayers(fake, records, fake.hostDocument(doc), sourceId, [item()], 'layerloop: x');
    expect(doc.xmp.get(XMP_DOCUMENT_KEY)).toBe(KEY);
    expect(await records.identify(fake.hostDocument(doc))).toEqual({ key: KEY, persistent: true, stored: true });
  });

  it('falls back to doc.id (tagged with the session) without XMP', async () => {
    const { fake, doc, records } = setup('unsupported');
    expect(await records.identify(fake.hostDocument(doc))).toEqual({ key: `photoshop-doc-${doc.id}@sess1`, persistent: false, stored: false });
  });
});

describe('layer -> edit records', () => {
  it('map a result layer to its edit and survive saving and reopening', async () => {
    const { fake, doc, records, sourceId } = setup();
    const { layerIds } = await placeLayers(fake, records, fake.hostDocument(doc), sourceId, [item()], 'layerloop: x');
    expect(await records.editForLayer(doc.id, layerIds[0])).toBe(EDIT);
    expect(await records.editForLayer(doc.id, sourceId)).toBeNull();
    expect(await records.placeOf(doc.id, EDIT)).toEqual({ left: 1, top: 1 });

    const reopened = fake.saveAndReopen(doc);
    expect(reopened.id).not.toBe(doc.id);
    const fresh = new DocumentRecords(fake, () => 'unused', 'sess2'); // a new plugin session
    expect(await fresh.identify(fake.hostDocument(reopened))).toEqual({ key: KEY, persistent: true, stored: true });
    expect(await fresh.editForLayer(reopened.id, layerIds[0])).toBe(EDIT);
    expect(await fresh.placeOf(reopened.id, EDIT)).toEqual({ left: 1, top: 1 });
  });

  it('drop layers that no longer exist when written again', async () => {
    const { fake, doc, records, sourceId } = setup();
    const first = await placeLayers(fake, records, fake.hostDocument(doc), sourceId, [item()], 'a');
    doc.layers = doc.layers.filter((l) => l.id !== first.layerIds[0]); // the user deleted the result layer
    const second = await placeLayers(fake, records, fake.hostDocument(doc), sourceId, [item('e2000000-0000-4000-8000-000000000002')], 'b');
    const stored = parseEditRecords(doc.xmp.get(XMP_LAYER_EDITS)!);
    expect(Object.keys(stored.layers)).toEqual([String(second.layerIds[0])]);
    expect(Object.keys(stored.places)).toEqual([EDIT, 'e2000000-0000-4000-8000-000000000002']); // places are kept for history
  });

  it('are kept in memory for the session when XMP is unavailable', async () => {
    const { fake, doc, records, sourceId } = setup('unsupported');
    const out = await placeLayers(fake, records, fake.hostDocument(doc), sourceId, [item()], 'x');
    expect(out.warning).toMatch(/Photoshop 25.0/);
    expect(await records.editForLayer(doc.id, out.layerIds[0])).toBe(EDIT);
    expect(doc.history).toEqual(['Open', 'x']); // the placement itself went through
  });

  it('are kept in memory, with a warning, when writing XMP fails', async () => {
    const { fake, doc, records, sourceId } = setup('read-only');
    const out = await placeLayers(fake, records, fake.hostDocument(doc), sourceId, [item()], 'x');
    expect(out.warning).toMatch(/Could not store layerloop data .*-25920/);
    expect(fake.stack(doc)).toEqual(['result', 'photo']);
    expect(await records.editForLayer(doc.id, out.layerIds[0])).toBe(EDIT);
  });

  it('ignore an unreadable record', () => {
    expect(parseEditRecords('{not json')).toEqual({ v: 1, layers: {}, places: {} });
    expect(parseEditRecords(JSON.stringify({ layers: { 1: 5, 2: 'x' }, places: { x: [1], y: [1, 2] } }))).toEqual({ v: 1, layers: { 2: 'x' }, places: { y: [1, 2] } });
  });
});
