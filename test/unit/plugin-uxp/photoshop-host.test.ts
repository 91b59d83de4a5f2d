/**
 * The real UxpPhotoshopHost (plugin-uxp/src/photoshop-host.ts) against the fake `photoshop` / `uxp` modules the
 * browser e2e test uses (test/e2e/uxp-harness/fake-photoshop.js): the Photoshop behaviours of the host audit
 * (research/host_audit.md P1-P12) that live in the host itself.
 */
import { XMP_NAMESPACE } from '../../../plugin-uxp/src/photoshop-host';
import { placeLayers, type PlaceItem } from '../../../plugin-uxp/src/place';
import { DocumentRecords } from '../../../plugin-uxp/src/identity';
import { fakePhotoshop } from '../../support/fake-photoshop-node';

const EDIT = 'e1000000-0000-4000-8000-000000000001';

function item(host: { activeDocument(): { colorProfile: string } | null }, patch: Partial<PlaceItem> = {}): PlaceItem {
  return {
    editId: EDIT,
    name: 'result',
    rgba: new Uint8Array(4 * 2 * 4).fill(200),
    width: 4,
    height: 2,
    left: 20,
    top: 10,
    colorProfile: host.activeDocument()!.colorProfile,
    mask: null,
    look: null,
    ...patch,
  };
}

const records = (host: Parameters<typeof placeLayers>[0]) => new DocumentRecords(host, () => '0000000a-0000-4000-8000-000000000000', 's');

describe('the real UxpPhotoshopHost on the fake photoshop modules', () => {
  it('an untagged document has no profile (not "None"), and results are placed into it', async () => {
    const { host, hooks } = await fakePhotoshop({ colorProfile: null });
    const doc = host.activeDocument()!;
    expect(doc.colorProfile).toBe('');
    // the history restore path writes with the document's profile
    await placeLayers(host, records(host), doc, null, [item(host)], 'restore');
    expect(hooks.problems).toEqual([]);
    expect(hooks.dump().layers.map((l) => l.name)).toEqual(['result', 'shapes']);
  });

  it('a tagged document reports its profile', async () => {
    const { host } = await fakePhotoshop();
    expect(host.activeDocument()!.colorProfile).toBe('sRGB IEC61966-2.1');
  });

  it('writes XMP in Adobe’s documented form and reads it back', async () => {
    const { host, hooks } = await fakePhotoshop();
    const doc = host.activeDocument()!;
    await host.executeAsModal('x', async () => host.writeXmpProperties(doc.id, { documentKey: 'k1' }));
    expect(JSON.parse(hooks.xmp())).toEqual({ [`${XMP_NAMESPACE}|documentKey`]: 'k1' });
    expect(await host.readXmpProperty(doc.id, 'documentKey')).toBe('k1');
  });

  it('Photoshop 24.x: no selection does not throw (batchPlay throws on the failed get); a selection is found', async () => {
    const { host, hooks } = await fakePhotoshop({ version: 24 });
    const doc = host.activeDocument()!;
    await expect(host.selectionBounds(doc.id)).resolves.toBeNull();
    hooks.setEllipseSelection(56, 50, 10, 10, 0);
    await expect(host.selectionBounds(doc.id)).resolves.toEqual({ left: 46, top: 40, right: 66, bottom: 60 });
    await expect(host.readXmpProperty(doc.id, 'documentKey')).rejects.toThrow('XMP metadata needs Photoshop 25.0 or later');
  });

  it('places into the document the edit came from, though the user switched to another meanwhile', async () => {
    const { host, hooks } = await fakePhotoshop();
    const doc = host.activeDocument()!;
    const other = hooks.openAnotherDocument('other.psd');
    expect(host.activeDocument()!.id).toBe(other.id);
    await placeLayers(host, records(host), doc, 1, [item(host)], 'x');
    expect(hooks.dump().layers.map((l) => l.name)).toEqual(['result', 'shapes']);
    expect(other.layers.map((l) => l.name)).toEqual(['Background']);
  });

  it('reads a layer’s masks and look, writes a look', async () => {
    const { host, hooks } = await fakePhotoshop();
    const doc = host.activeDocument()!;
    expect(await host.layerMasks(doc.id, 1)).toEqual({ user: false, vector: false });
    const mask = new Uint8Array(160 * 140).fill(255);
    mask[10 * 160 + 20] = 7;
    hooks.setSourceMask(mask);
    hooks.source.__vectorMask = true;
    expect(await host.layerMasks(doc.id, 1)).toEqual({ user: true, vector: true });
    const got = await host.getLayerMask({ documentID: doc.id, layerID: 1, sourceBounds: { left: 20, top: 10, right: 22, bottom: 11 } });
    expect(Array.from((await got.imageData.getData()) as Uint8Array)).toEqual([7, 255]);
    got.imageData.dispose();
    await host.executeAsModal('x', async () => host.setLayerLook(doc.id, 1, { opacity: 40, fillOpacity: 90, blendMode: 'multiply' }));
    expect(host.activeLayers(doc.id)[0].look).toEqual({ opacity: 40, fillOpacity: 90, blendMode: 'multiply' });
  });

  it('the user cancels while a result is placed: the cancel is reported, not the failed resumeHistory, and nothing is left', async () => {
    const { host, hooks } = await fakePhotoshop();
    const doc = host.activeDocument()!;
    const slow: PlaceItem = item(host);
    const originalWrite = host.putPixels.bind(host);
    host.putPixels = async (o) => {
      hooks.cancelModal(); // Escape on Photoshop's progress bar
      return originalWrite(o);
    };
    await expect(placeLayers(host, records(host), doc, 1, [slow], 'x')).rejects.toThrow('putPixels: the user cancelled the operation');
    expect(hooks.dump().layers.map((l) => l.name)).toEqual(['shapes']);
    expect(hooks.problems).toEqual([]);
  });
});
