import { readResultTag } from '../../../plugin-figma/src/host';
import { compareStacking, messages, planSelection, summarize, type SelectedNode } from '../../../plugin-figma/src/selection';
import { FakeFigma, type FakeNode } from './fake-figma';

const DOC = '11111111-1111-4111-8111-111111111111';
const OTHER_DOC = '22222222-2222-4222-8222-222222222222';
const EDIT = '33333333-3333-4333-8333-333333333333';

/** The selection as the controller builds it (tags and stacking paths from the host). */
function selected(figma: FakeFigma, ...nodes: FakeNode[]): SelectedNode[] {
  return nodes.map((n) => {
    const path: number[] = [];
    for (let p: FakeNode | null = n; p && p.parent; p = p.parent) path.unshift(p.parent.children.indexOf(p));
    return { node: figma.snapshot(n), tag: readResultTag(figma, n.id), zPath: path };
  });
}

function plan(figma: FakeFigma, ...nodes: FakeNode[]) {
  return planSelection(selected(figma, ...nodes), DOC);
}

describe('what the selection will do', () => {
  it('nothing selected: says what to select', () => {
    const figma = new FakeFigma();
    expect(plan(figma)).toEqual({ ok: false, message: 'Select a layer to edit. To change only part of it, also select a shape drawn over that part.' });
  });

  it('one layer: a global edit, explained with its size', () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ name: 'Photo', x: 10, y: 20, width: 200, height: 100 });
    const p = plan(figma, photo);
    expect(p).toMatchObject({ ok: true, mask: null, parent: { kind: 'source' }, continues: false });
    expect(p.ok && p.text).toBe('Edits all of "Photo" (200×100). The result is a new layer just above it.');
    expect(summarize(p)).toEqual({
      ready: true,
      text: 'Edits all of "Photo" (200×100). The result is a new layer just above it.',
      mode: 'global',
      continues: false,
      sourceName: 'Photo',
      maskName: null,
    });
  });

  it('a layer plus a shape over it: the shape is the mask, whatever the click order', () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ name: 'Photo', width: 200, height: 100 });
    const blob = figma.ellipse({ name: 'Ellipse 1', x: 50, y: 20, width: 40, height: 40 });
    for (const order of [[photo, blob], [blob, photo]]) {
      const p = plan(figma, ...order);
      expect(p.ok && p.source.name).toBe('Photo');
      expect(p.ok && p.mask?.name).toBe('Ellipse 1');
      expect(p.ok && p.text).toBe(
        'Edits "Photo" only under "Ellipse 1" (soft where the shape is blurred or semi-transparent); the rest stays exactly as it is. The result is a new layer just above it.',
      );
    }
  });

  it('any layer named "mask" is the mask, even a frame, and wins over shapes', () => {
    const figma = new FakeFigma();
    const card = figma.rect({ name: 'Card', width: 300, height: 200 });
    const mask = figma.frame({ name: ' Mask ', x: 10, y: 10, width: 50, height: 50 });
    const p = plan(figma, card, mask);
    expect(p.ok && p.mask?.id).toBe(mask.id);
    expect(p.ok && p.source.id).toBe(card.id);
  });

  it('a frame plus a text layer: neither can be a mask', () => {
    const figma = new FakeFigma();
    const frame = figma.frame({ name: 'Hero', width: 300, height: 200 });
    const text = figma.add('TEXT', { name: 'Title', width: 100, height: 20 });
    expect(plan(figma, frame, text)).toEqual({
      ok: false,
      message:
        'Neither "Hero" nor "Title" can be a mask. To limit the edit, select the layer plus one shape over it (rectangle, ellipse, polygon, star, vector or boolean), or name the mask layer "mask".',
    });
  });

  it('two shapes: a photo is the source; otherwise the upper one is the mask', () => {
    const figma = new FakeFigma();
    const lower = figma.rect({ name: 'Lower', width: 200, height: 200 });
    const upper = figma.rect({ name: 'Upper', x: 50, y: 50, width: 50, height: 50 });
    const p = plan(figma, upper, lower);
    expect(p.ok && p.mask?.name).toBe('Upper');
    const photoOnTop = figma.photo({ name: 'Photo', width: 200, height: 200 });
    const q = plan(figma, photoOnTop, upper);
    expect(q.ok && q.source.name).toBe('Photo');
    expect(q.ok && q.mask?.name).toBe('Upper');
  });

  it('stacking order compares paths across parents', () => {
    expect(compareStacking([0, 3], [1])).toBe(-1);
    expect(compareStacking([2], [1, 9])).toBe(1);
    expect(compareStacking([1], [1, 0])).toBe(-1); // a child draws above its parent
  });

  it('more than two layers', () => {
    const figma = new FakeFigma();
    const nodes = [figma.rect(), figma.rect(), figma.rect()];
    expect(plan(figma, ...nodes)).toEqual({
      ok: false,
      message: '3 layers are selected. Select one layer to edit, plus at most one shape over it as the mask.',
    });
  });

  it('a mask that does not overlap the layer', () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ name: 'Photo', width: 100, height: 100 });
    const far = figma.ellipse({ name: 'Blob', x: 100, y: 0, width: 30, height: 30 }); // touches the edge only
    expect(plan(figma, photo, far)).toEqual({ ok: false, message: 'The mask "Blob" does not overlap "Photo". Move it over the part of "Photo" to change.' });
  });

  it('a result layer continues from its stored edit; one from another file or server starts from pixels', () => {
    const figma = new FakeFigma();
    const result = figma.photo({ name: 'make it blue', width: 64, height: 64 });
    figma.tag(result, DOC, EDIT);
    const p = plan(figma, result);
    expect(p).toMatchObject({ ok: true, continues: true, parent: { kind: 'edit', editId: EDIT } });
    expect(p.ok && p.text).toBe(
      'Continues from the stored edit of this result layer (no quality lost to re-encoding). Edits all of "make it blue" (64×64). The result is a new layer just above it.',
    );
    figma.tag(result, OTHER_DOC, EDIT);
    const q = plan(figma, result);
    expect(q).toMatchObject({ ok: true, continues: false, parent: { kind: 'source' } });
    expect(q.ok && q.text).toBe(
      '"make it blue" was made in another file or on another server, so the edit starts from its pixels. Edits all of "make it blue" (64×64). The result is a new layer just above it.',
    );
    // before the first connection the tag is trusted
    expect(planSelection(selected(figma, result), null)).toMatchObject({ ok: true, continues: true });
  });

  it('a result layer plus a mask shape: continues, masked', () => {
    const figma = new FakeFigma();
    const result = figma.photo({ name: 'make it blue', width: 64, height: 64 });
    figma.tag(result, DOC, EDIT);
    const mask = figma.ellipse({ name: 'Spot', x: 10, y: 10, width: 20, height: 20 });
    const p = plan(figma, mask, result);
    expect(p).toMatchObject({ ok: true, continues: true, parent: { kind: 'edit', editId: EDIT } });
    expect(p.ok && p.mask?.name).toBe('Spot');
  });

  it('unsupported sources get exact messages', () => {
    const figma = new FakeFigma();
    const cases: [FakeNode, string][] = [
      [figma.photo({ name: 'Hidden', visible: false }), '"Hidden" is hidden. Show it first: a hidden layer has no pixels to edit.'],
      [
        figma.photo({ name: 'Tilted', rotation: 30 }),
        '"Tilted" is rotated (30° on the page). Set its rotation, and that of any frame or group around it, to 0, or flatten it, then try again.',
      ],
      [figma.photo({ name: 'Big', width: 5000, height: 1000 }), '"Big" is 5000×1000. Each side can be at most 4096 px: scale it down or split it, then try again.'],
      [figma.photo({ name: 'Hair', width: 100, height: 0.5 }), '"Hair" is 100×0.5: it needs at least 1×1 px to edit.'],
      [
        figma.photo({ name: 'Strip', width: 900, height: 100 }),
        '"Strip" is 900×100: the long side can be at most 8 times the short side. Crop it first (put it in a frame that clips).',
      ],
      [figma.add('SLICE', { name: 'Export area' }), '"Export area" is a slice, which has no pixels of its own to edit. Select a frame, group, shape, text or image layer.'],
    ];
    for (const [node, message] of cases) expect(plan(figma, node)).toEqual({ ok: false, message });
  });

  it('a layer inside a rotated frame is rotated on the page; flipped and 4096 px layers are fine', () => {
    const figma = new FakeFigma();
    const tilted = figma.frame({ name: 'Tilted frame', rotation: -15, width: 400, height: 400 });
    const inside = figma.photo({ name: 'Inside', parent: tilted, x: 10, y: 10 });
    expect(plan(figma, inside)).toEqual({ ok: false, message: messages.rotated('Inside', -15) });
    expect(plan(figma, figma.photo({ name: 'Mirrored', flipX: true }))).toMatchObject({ ok: true });
    expect(plan(figma, figma.photo({ name: 'Max', width: 4096, height: 4096 }))).toMatchObject({ ok: true });
  });
});
