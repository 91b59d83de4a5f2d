/**
 * The real FigmaHost (plugin-figma/src/figma-host.ts) against the fake `figma` global the browser e2e test uses
 * (test/e2e/figma-harness/fake-figma.js): the Figma behaviours of the host audit (research/host_audit.md F4-F14)
 * that live in the host itself.
 */
import { decodeImage } from '../../../server/imaging/image';
import { MainController } from '../../../plugin-figma/src/controller';
import { DATA_NAMESPACE } from '../../../plugin-figma/src/figma-host';
import { exportMask, MASK_FRAME_NAME } from '../../../plugin-figma/src/mask';
import { placeResults } from '../../../plugin-figma/src/place';
import { fakeFigma, hostOver } from '../../support/fake-figma-node';

const DOC = '11111111-1111-4111-8111-111111111111';
const EDIT = '33333333-3333-4333-8333-333333333333';

/** the red channel of the exported mask at (x, y) */
async function maskAt(png: Uint8Array): Promise<(x: number, y: number) => number> {
  const image = await decodeImage(png);
  return (x, y) => image.data[(y * image.width + x) * 4];
}

describe('the real FigmaHost on the fake figma global', () => {
  it('a mask shape that is a Figma mask (isMask) still exports white where it is (a mask layer renders nothing itself)', async () => {
    const { figma, hooks } = fakeFigma();
    hooks.mask.isMask = true; // the designer's "Mask" shape of a mask group
    const host = hostOver(figma);
    const [source, mask] = host.selection();
    const image = await exportMask(host, source, mask);
    const at = await maskAt(image.png);
    expect([at(40, 44), at(5, 5)]).toEqual([255, 0]);
    expect(hooks.mask.isMask).toBe(true); // the designer's layer is untouched
  });

  it('text in the mask: its fonts are loaded before it is repainted; a missing font says what to do', async () => {
    const { figma, hooks } = fakeFigma();
    const text = hooks.add('TEXT', 'mask', { x: 110, y: 60, width: 40, height: 20 }, { characters: 'SALE', fills: [{ type: 'SOLID', color: { r: 0, g: 0, b: 0 }, opacity: 1 }] });
    const host = hostOver(figma);
    hooks.select([hooks.source.id, text.id]);
    const [source, mask] = host.selection();
    const image = await exportMask(host, source, mask);
    const at = await maskAt(image.png);
    expect([at(20, 20), at(100, 100)]).toEqual([255, 0]);

    const missing = hooks.add('TEXT', 'mask', { x: 110, y: 60, width: 40, height: 20 }, { characters: 'SALE', hasMissingFont: true, fontName: { family: 'Brand Sans', style: 'Bold' } });
    hooks.select([hooks.source.id, missing.id]);
    const [source2, mask2] = host.selection();
    await expect(exportMask(host, source2, mask2)).rejects.toThrow('The mask "mask" uses a font this computer does not have ("mask"): install the font, or convert the text to outlines (Flatten), then try again.');
    expect(hooks.layers().some((l) => l.name === MASK_FRAME_NAME)).toBe(false);
  });

  it('a result maps the whole image onto its rectangle (CROP, identity), takes the source’s look, and is scrolled into view', async () => {
    const { figma, hooks } = fakeFigma();
    hooks.source.opacity = 0.6;
    hooks.source.blendMode = 'MULTIPLY';
    const host = hostOver(figma);
    host.selection();
    const png = await host.exportPng(hooks.source.id);
    const [id] = await placeResults(host, { target: { kind: 'node', nodeId: hooks.source.id }, instruction: 'x', documentId: DOC, results: [{ editId: EDIT, png }] });
    const layer = hooks.layers().find((l) => l.id === id)!;
    expect(layer.fills).toEqual([{ type: 'IMAGE', imageHash: expect.any(String), scaleMode: 'CROP', imageTransform: [[1, 0, 0], [0, 1, 0]] }]);
    expect([layer.opacity, layer.blendMode]).toEqual([0.6, 'MULTIPLY']);
    expect(hooks.log.slice(-3)).toEqual([`selection ${id}`, `scrollAndZoomIntoView ${id}`, 'commitUndo']);
  });

  it('exports a semi-transparent source from a full-opacity copy, which it removes', async () => {
    const { figma, hooks } = fakeFigma();
    hooks.source.opacity = 0.5;
    const host = hostOver(figma);
    host.selection();
    const before = hooks.layers().map((l) => l.id);
    await host.exportPng(hooks.source.id, { ownLookOnly: true });
    const clone = /^clone 1:2 -> (\S+)$/.exec(hooks.log.find((l) => l.startsWith('clone 1:2')) ?? '')?.[1];
    expect(clone).toBeDefined();
    expect(hooks.log).toContain(`export ${clone} {"format":"PNG","useAbsoluteBounds":true,"colorProfile":"SRGB","constraint":{"type":"SCALE","value":1}}`);
    expect(hooks.layers().map((l) => l.id)).toEqual(before);
    expect(hooks.source.opacity).toBe(0.5);
  });

  it('result tags and the file’s key are shared plugin data: they survive the plugin getting a new id', async () => {
    const { figma, hooks } = fakeFigma({ pluginId: 'layerloop-dev' });
    const host = hostOver(figma);
    host.selection();
    host.setPluginData(hooks.source.id, 'editId', EDIT);
    host.setDocumentData('documentId', DOC);
    hooks.setPluginId('1234567890123456789');
    const published = hostOver(figma);
    published.selection();
    expect(published.getPluginData(hooks.source.id, 'editId')).toBe(EDIT);
    expect(published.getDocumentData('documentId')).toBe(DOC);

    // a file tagged with private plugin data (builds before this one) is still read under the same id
    hooks.setPluginId('layerloop-dev');
    hooks.mask.setPluginData('editId', 'old');
    expect(host.getPluginData(hooks.mask.id, 'editId')).toBe('old');
  });

  it('closing the plugin while the mask exports leaves no frame behind: removed on close, and swept at the next start', async () => {
    const { figma, hooks } = fakeFigma();
    const host = hostOver(figma);
    new MainController(host).start();
    const [source, mask] = host.selection();
    void exportMask(host, source, mask); // never settles: the plugin is closed under it
    expect(hooks.layers().map((l) => l.name)).toContain(MASK_FRAME_NAME);
    hooks.close();
    expect(hooks.layers().map((l) => l.name)).toEqual(['Shapes', 'Circle mask']);

    // a frame that outlived its plugin (a crash): the next start removes it
    const next = fakeFigma();
    const left = next.hooks.add('FRAME', MASK_FRAME_NAME, { x: 0, y: 0, width: 10, height: 10 });
    left.setSharedPluginData(DATA_NAMESPACE, 'temporary', '1');
    new MainController(hostOver(next.figma)).start();
    expect(next.hooks.layers().map((l) => l.name)).toEqual(['Shapes', 'Circle mask']);
  });
});
