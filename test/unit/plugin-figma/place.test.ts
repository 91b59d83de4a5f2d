import { PluginError } from '../../../plugin-figma/src/host';
import { placeResults, resultName, type PlaceRequest } from '../../../plugin-figma/src/place';
import { FakeFigma, fakePng, PHOTO, type FakeNode } from './fake-figma';

const DOC = '11111111-1111-4111-8111-111111111111';
const EDITS = ['aaaaaaaa-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002', 'aaaaaaaa-0000-4000-8000-000000000003'];

function request(source: FakeNode, n = 1, size = { width: 200, height: 100 }): PlaceRequest {
  return {
    target: { kind: 'node', nodeId: source.id },
    instruction: 'make the sky stormy',
    documentId: DOC,
    results: EDITS.slice(0, n).map((editId) => ({ editId, png: fakePng(size.width, size.height) })),
  };
}

function expectOver(figma: FakeFigma, id: string, source: FakeNode): void {
  const got = figma.snapshot(figma.get(id)).bounds!;
  const want = figma.snapshot(source).bounds!;
  expect(got.x).toBeCloseTo(want.x, 9);
  expect(got.y).toBeCloseTo(want.y, 9);
  expect(got.width).toBeCloseTo(want.width, 9);
  expect(got.height).toBeCloseTo(want.height, 9);
}

describe('placing results', () => {
  it('a tagged image rectangle exactly over the source, just above it, one undo step, selected', async () => {
    const figma = new FakeFigma();
    figma.rect({ name: 'Below' });
    const photo = figma.photo({ name: 'Photo', x: 12.5, y: 40, width: 200, height: 100 });
    figma.rect({ name: 'Above' });
    const [id] = await placeResults(figma, request(photo));
    const node = figma.get(id);
    expect(figma.page.children.map((n) => n.name)).toEqual(['Below', 'Photo', 'make the sky stormy', 'Above']);
    expectOver(figma, id, photo);
    expect(node.fills).toEqual([{ type: 'IMAGE', scaleMode: 'CROP', imageHash: 'img1' }]);
    expect([node.opacity, node.blendMode]).toEqual([1, 'NORMAL']);
    expect(Object.fromEntries(node.pluginData)).toEqual({ documentId: DOC, editId: EDITS[0] });
    expect(figma.selection().map((n) => n.id)).toEqual([id]);
    expect(figma.log.at(-1)).toBe('commit');
    expect(figma.log.filter((l) => l === 'commit')).toHaveLength(1);
  });

  it('nested frames: inserted in the inner frame, positioned relative to it', async () => {
    const figma = new FakeFigma();
    const outer = figma.frame({ x: 100, y: 50, width: 1000, height: 1000 });
    const inner = figma.frame({ parent: outer, x: 10, y: 20, width: 500, height: 500 });
    const photo = figma.photo({ parent: inner, x: 5, y: 7, width: 200, height: 100 });
    const [id] = await placeResults(figma, request(photo));
    expect(figma.get(id).parent).toBe(inner);
    expect(figma.get(id).relativeTransform).toEqual([
      [1, 0, 5],
      [0, 1, 7],
    ]);
    expectOver(figma, id, photo);
  });

  it('auto-layout parent: the result is absolutely positioned, or the layout would move it', async () => {
    const figma = new FakeFigma();
    const row = figma.frame({ x: 300, y: 300, width: 900, height: 200, layoutMode: 'HORIZONTAL' });
    figma.rect({ parent: row, width: 80 });
    const photo = figma.photo({ parent: row, width: 200, height: 100 });
    figma.rect({ parent: row, width: 60 });
    const [id] = await placeResults(figma, request(photo));
    expect(figma.get(id).parent).toBe(row);
    expect(figma.get(id).layoutPositioning).toBe('ABSOLUTE');
    expect(row.children.indexOf(figma.get(id))).toBe(row.children.indexOf(photo) + 1);
    expectOver(figma, id, photo);
    // the flow siblings did not move
    expect(figma.snapshot(row.children[3]).bounds!.x).toBe(300 + 80 + 200);
  });

  it('group parent: in the group, relative to the group’s container', async () => {
    const figma = new FakeFigma();
    const frame = figma.frame({ x: 1000, y: 0, width: 800, height: 800 });
    const photo = figma.photo({ parent: frame, x: 100, y: 100, width: 200, height: 100 });
    const label = figma.rect({ parent: frame, x: 150, y: 250, width: 50, height: 20 });
    const group = figma.group([photo, label]);
    const [id] = await placeResults(figma, request(photo));
    expect(figma.get(id).parent).toBe(group);
    expect(group.children.map((n) => n.id)).toEqual([photo.id, id, label.id]);
    expect(figma.get(id).relativeTransform).toEqual([
      [1, 0, 100],
      [0, 1, 100],
    ]);
    expectOver(figma, id, photo);
  });

  it('inside an instance or a boolean: just above the outermost one, same bounds', async () => {
    const figma = new FakeFigma();
    const frame = figma.frame({ x: 50, y: 50, width: 800, height: 800 });
    const instance = figma.add('INSTANCE', { parent: frame, x: 100, y: 100, width: 400, height: 400 });
    const nested = figma.frame({ parent: instance, x: 10, y: 10, width: 300, height: 300 });
    const photo = figma.photo({ parent: nested, x: 20, y: 30, width: 200, height: 100 });
    const [id] = await placeResults(figma, request(photo));
    expect(figma.get(id).parent).toBe(frame);
    expect(frame.children.indexOf(figma.get(id))).toBe(frame.children.indexOf(instance) + 1);
    expectOver(figma, id, photo);

    const a = figma.rect({ parent: frame, x: 600, y: 600, width: 100, height: 100 });
    const b = figma.ellipse({ parent: frame, x: 650, y: 650, width: 100, height: 100 });
    const union = figma.group([a, b], { type: 'BOOLEAN_OPERATION' });
    const [id2] = await placeResults(figma, request(a, 1, { width: 100, height: 100 }));
    expect(figma.get(id2).parent).toBe(frame);
    expect(frame.children.indexOf(figma.get(id2))).toBe(frame.children.indexOf(union) + 1);
    expectOver(figma, id2, a);
  });

  it('inside a main component, a variant set or a transform group: just above it, so it is not copied into every instance or repeated', async () => {
    const figma = new FakeFigma();
    const frame = figma.frame({ x: 0, y: 0, width: 2000, height: 2000 });
    const component = figma.add('COMPONENT', { parent: frame, x: 100, y: 100, width: 400, height: 400 });
    const photo = figma.photo({ parent: component, x: 10, y: 20, width: 200, height: 100 });
    const [id] = await placeResults(figma, request(photo));
    expect(figma.get(id).parent).toBe(frame);
    expect(frame.children.indexOf(figma.get(id))).toBe(frame.children.indexOf(component) + 1);
    expectOver(figma, id, photo);

    const set = figma.add('COMPONENT_SET', { parent: frame, x: 600, y: 100, width: 500, height: 300 });
    const variant = figma.add('COMPONENT', { parent: set, x: 20, y: 20, width: 200, height: 100, fills: [PHOTO] });
    const [id2] = await placeResults(figma, request(variant));
    expect(figma.get(id2).parent).toBe(frame);
    expectOver(figma, id2, variant);

    const repeat = figma.add('TRANSFORM_GROUP', { parent: frame, x: 100, y: 800, width: 600, height: 300 });
    const tile = figma.photo({ parent: repeat, x: 0, y: 0, width: 200, height: 100 });
    const [id3] = await placeResults(figma, request(tile));
    expect(figma.get(id3).parent).toBe(frame);
    expectOver(figma, id3, tile);
    expect(figma.duplicatedResults()).toEqual([]);
  });

  it('the result takes the source’s opacity and blend mode', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 200, height: 100, opacity: 0.4, blendMode: 'MULTIPLY' });
    const ids = await placeResults(figma, request(photo, 2));
    expect(ids.map((id) => [figma.get(id).opacity, figma.get(id).blendMode])).toEqual([
      [0.4, 'MULTIPLY'],
      [0.4, 'MULTIPLY'],
    ]);
  });

  it('variations: sibling layers in order, the first on top and the only visible one', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 200, height: 100 });
    const ids = await placeResults(figma, request(photo, 3));
    expect(figma.page.children.map((n) => n.name)).toEqual([
      photo.name,
      'make the sky stormy (3/3)',
      'make the sky stormy (2/3)',
      'make the sky stormy (1/3)',
    ]);
    expect(ids.map((id) => figma.get(id).name)).toEqual(['make the sky stormy (1/3)', 'make the sky stormy (2/3)', 'make the sky stormy (3/3)']);
    expect(ids.map((id) => figma.get(id).visible)).toEqual([true, false, false]);
    expect(ids.map((id) => figma.get(id).pluginData.get('editId'))).toEqual(EDITS);
    for (const id of ids) expectOver(figma, id, photo);
    expect(figma.log.filter((l) => l === 'commit')).toHaveLength(1);
  });

  it('an image Figma refuses: nothing is added', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 200, height: 100 });
    const before = figma.all().length;
    const req = request(photo, 2);
    req.results[1].png = fakePng(5000, 100);
    await expect(placeResults(figma, req)).rejects.toThrow(new PluginError('Figma could not take the result image (Image is too large). Nothing was added.'));
    expect(figma.all()).toHaveLength(before);
    expect(figma.log).not.toContain('commit');
  });

  it('a failure half way removes every layer made so far', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 200, height: 100 });
    const before = figma.all().length;
    figma.failTransformAfter = 1; // the second variation fails
    await expect(placeResults(figma, request(photo, 3))).rejects.toThrow('simulated');
    expect(figma.all()).toHaveLength(before);
    expect(figma.log).not.toContain('commit');
  });

  it('the source was deleted or rotated meanwhile: a message that points to History', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 200, height: 100 });
    const req = request(photo);
    photo.relativeTransform = [
      [0, 1, 0],
      [-1, 0, 0],
    ];
    await expect(placeResults(figma, req)).rejects.toThrow(/changed while the edit ran: "rectangle .*" is rotated \(90° on the page\).*History/);
    figma.remove(photo.id);
    await expect(placeResults(figma, req)).rejects.toThrow(
      'The layer you edited was deleted before the result arrived. The result is kept in History: select a layer and press Place there.',
    );
  });

  it('history Place: over the one selected layer, else in the middle of the view at the image size', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ x: 40, y: 40, width: 300, height: 200 });
    figma.setSelection(photo);
    const over = { ...request(photo), target: { kind: 'selection-or-viewport' as const } };
    const [id] = await placeResults(figma, over);
    expectOver(figma, id, photo);
    figma.setSelection();
    figma.center = { x: 1000, y: 2000 };
    const [id2] = await placeResults(figma, { ...over, results: [{ editId: EDITS[0], png: fakePng(64, 32) }] });
    expect(figma.snapshot(figma.get(id2)).bounds).toEqual({ x: 968, y: 1984, width: 64, height: 32 });
    expect(figma.get(id2).parent).toBe(figma.page);
  });

  it('names results after the instruction', () => {
    expect(resultName('  make   the sky\nstormy ', 0, 1)).toBe('make the sky stormy');
    expect(resultName('', 1, 2)).toBe('layerloop edit (2/2)');
    const long = resultName('x'.repeat(80), 0, 1);
    expect(long).toHaveLength(60);
    expect(long.endsWith('…')).toBe(true);
  });
});
