import { exportMask, MASK_FRAME_NAME } from '../../../plugin-figma/src/mask';
import { decodeFakePng, FakeFigma, type FakeNode } from './fake-figma';

async function maskOf(figma: FakeFigma, source: FakeNode, mask: FakeNode) {
  const image = await exportMask(figma, figma.snapshot(source), figma.snapshot(mask));
  return { image, ...decodeFakePng(image.png) };
}

describe('mask export', () => {
  it('renders a clone of the shape in a black frame exactly over the source, at the source size', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ name: 'Photo', x: 100, y: 50, width: 200, height: 120 });
    const blob = figma.ellipse({ name: 'Blob', x: 130, y: 70, width: 40, height: 30 });
    const pageBefore = figma.page.children.map((n) => n.id);

    const { image, width, height, scene } = await maskOf(figma, photo, blob);

    expect({ width: image.width, height: image.height }).toEqual({ width: 200, height: 120 });
    expect({ width, height }).toEqual({ width: 200, height: 120 });
    expect(scene).toMatchObject({ name: MASK_FRAME_NAME, type: 'FRAME', bounds: { x: 0, y: 0, width: 200, height: 120 } });
    expect(scene.fills).toEqual([{ type: 'SOLID', color: { r: 0, g: 0, b: 0 } }]);
    expect(scene.children).toHaveLength(1);
    const clone = scene.children[0];
    // the shape's place on the page, relative to the source's top-left
    expect(clone.bounds).toEqual({ x: 30, y: 20, width: 40, height: 30 });
    expect(clone.fills).toEqual([{ type: 'SOLID', color: { r: 1, g: 1, b: 1 }, opacity: 1, visible: true }]);
    // the original is untouched, and nothing is left behind
    expect(figma.get(blob.id).fills[0]).toMatchObject({ type: 'SOLID', color: { r: 0.85, g: 0.85, b: 0.85 } });
    expect(figma.page.children.map((n) => n.id)).toEqual(pageBefore);
    expect(figma.all().some((n) => n.name === MASK_FRAME_NAME)).toBe(false);
  });

  it('works in the source frame of reference when source and mask sit in different nested frames', async () => {
    const figma = new FakeFigma();
    const outer = figma.frame({ name: 'Outer', x: 1000, y: 500, width: 800, height: 800 });
    const inner = figma.frame({ name: 'Inner', parent: outer, x: 40, y: 60, width: 400, height: 400 });
    const photo = figma.photo({ name: 'Photo', parent: inner, x: 10, y: 20, width: 300, height: 200 });
    const other = figma.frame({ name: 'Overlay', x: 900, y: 400, width: 600, height: 600, fills: [] });
    const blob = figma.ellipse({ name: 'Blob', parent: other, x: 200, y: 250, width: 50, height: 50 });
    // photo at page (1050, 580); blob at page (1100, 650)
    const { scene } = await maskOf(figma, photo, blob);
    expect(scene.children[0].bounds).toEqual({ x: 50, y: 70, width: 50, height: 50 });
  });

  it('keeps a rotated mask rotated, and softness: opacity, translucent fills, layer blur; shadows go', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 200, height: 200 });
    const blob = figma.rect({
      name: 'Soft',
      x: 100,
      y: 100,
      width: 40,
      height: 20,
      rotation: 45,
      opacity: 0.5,
      visible: false,
      blendMode: 'MULTIPLY',
      fills: [{ type: 'SOLID', color: { r: 1, g: 0, b: 0 }, opacity: 0.8 } as never],
      strokes: [{ type: 'SOLID', color: { r: 0, g: 0, b: 0 } } as never],
      effects: [
        { type: 'LAYER_BLUR', visible: true },
        { type: 'DROP_SHADOW', visible: true },
      ],
    });
    const { scene } = await maskOf(figma, photo, blob);
    const clone = scene.children[0];
    const abs = figma.snapshot(blob).absoluteTransform;
    for (let r = 0; r < 2; r++) for (let c = 0; c < 3; c++) expect(clone.absoluteTransform[r][c]).toBeCloseTo(abs[r][c], 9);
    expect(clone).toMatchObject({ visible: true, opacity: 0.5, blendMode: 'NORMAL' });
    expect(clone.fills).toEqual([{ type: 'SOLID', color: { r: 1, g: 1, b: 1 }, opacity: 0.8, visible: true }]);
    expect(clone.strokes).toEqual([{ type: 'SOLID', color: { r: 1, g: 1, b: 1 }, opacity: 1, visible: true }]);
    expect(clone.effects).toEqual([{ type: 'LAYER_BLUR', visible: true }]);
  });

  it('moves a group mask with all its children', async () => {
    const figma = new FakeFigma();
    const holder = figma.frame({ x: 300, y: 300, width: 500, height: 500, fills: [] });
    const photo = figma.photo({ name: 'Photo', x: 310, y: 320, width: 200, height: 200 });
    const a = figma.ellipse({ parent: holder, x: 20, y: 30, width: 10, height: 10 });
    const b = figma.ellipse({ parent: holder, x: 50, y: 60, width: 10, height: 10 });
    const group = figma.group([a, b], { name: 'mask' });
    const { scene } = await maskOf(figma, photo, group);
    const clone = scene.children[0];
    expect(clone.type).toBe('GROUP');
    // group at page (320, 330): relative to the photo (310, 320)
    expect(clone.bounds).toEqual({ x: 10, y: 10, width: 40, height: 40 });
    expect(clone.children.map((c) => c.bounds)).toEqual([
      { x: 10, y: 10, width: 10, height: 10 },
      { x: 40, y: 40, width: 10, height: 10 },
    ]);
  });

  it('a shape that is a Figma mask (isMask) is copied as a plain shape, which renders', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 100, height: 100 });
    const clip = figma.ellipse({ x: 10, y: 10, width: 30, height: 30, isMask: true });
    const { scene } = await maskOf(figma, photo, clip);
    expect(scene.children[0]).toMatchObject({ isMask: false, visible: true });
    expect(figma.get(clip.id).isMask).toBe(true); // the original is untouched
  });

  it('commits the user’s own changes as their undo step before making the temporary frame', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 100, height: 100 });
    const blob = figma.ellipse({ width: 10, height: 10 });
    await maskOf(figma, photo, blob);
    expect(figma.log[0]).toBe('commit');
    expect(figma.log[1]).toMatch(/^create:FRAME:/);
  });

  it('removes the temporary frame even when the export fails', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 100, height: 100 });
    const blob = figma.ellipse({ width: 10, height: 10 });
    const pageBefore = figma.page.children.map((n) => n.id);
    const original = figma.createMaskFrame.bind(figma);
    figma.createMaskFrame = (bounds, name) => {
      const id = original(bounds, name);
      figma.failExportOf = id;
      return id;
    };
    await expect(exportMask(figma, figma.snapshot(photo), figma.snapshot(blob))).rejects.toThrow('export failed (simulated)');
    expect(figma.page.children.map((n) => n.id)).toEqual(pageBefore);
    expect(figma.log.filter((l) => l.startsWith('remove:'))).toHaveLength(1);
  });

  it('removes the clone and the frame when the clone cannot go into the frame', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 100, height: 100 });
    const blob = figma.ellipse({ width: 10, height: 10 });
    const pageBefore = figma.page.children.map((n) => n.id);
    figma.failAppend = true;
    await expect(exportMask(figma, figma.snapshot(photo), figma.snapshot(blob))).rejects.toThrow('appendChild failed');
    expect(figma.page.children.map((n) => n.id)).toEqual(pageBefore);
    expect(figma.log.filter((l) => l.startsWith('remove:'))).toHaveLength(2);
  });
});
