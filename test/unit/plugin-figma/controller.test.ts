import { encodeHistoryMarker, parseHistoryMarker } from '../../../shared/client';
import { MainController, UI_SIZE } from '../../../plugin-figma/src/controller';
import { MASK_FRAME_NAME } from '../../../plugin-figma/src/mask';
import type { MainToUi, MainToUiOf } from '../../../plugin-figma/src/messages';
import { decodeFakePng, FakeFigma, fakePng } from './fake-figma';

const KEY = '44444444-4444-4444-8444-444444444444';
const DOC = '11111111-1111-4111-8111-111111111111';
const EDIT = '33333333-3333-4333-8333-333333333333';
const DOC2 = '22222222-2222-4222-8222-222222222222';

function setup() {
  const figma = new FakeFigma();
  const main = new MainController(figma);
  main.start();
  return { figma, main };
}

function last<T extends MainToUi['type']>(figma: FakeFigma, type: T): MainToUiOf<T> {
  const found = figma.uiMessages.filter((m) => m.type === type);
  if (found.length === 0) throw new Error(`no ${type} message; got ${figma.uiMessages.map((m) => m.type).join(', ')}`);
  return found[found.length - 1] as MainToUiOf<T>;
}

describe('the main thread', () => {
  it('opens the panel and says nothing before the UI is ready', async () => {
    const { figma, main } = setup();
    expect(figma.shownUi).toEqual(UI_SIZE);
    figma.setSelection(figma.photo());
    await main.pushSelection();
    expect(figma.uiMessages).toEqual([]);
  });

  it('answers ready with init: default settings, a document key, the selection; writes nothing to the file', async () => {
    const { figma, main } = setup();
    await main.handle({ type: 'ready', freshDocumentKey: KEY });
    expect(figma.uiMessages).toEqual([
      {
        type: 'init',
        settings: { serverUrl: 'http://localhost:7860', token: '' },
        documentKey: KEY,
        documentId: null,
        historyMarker: null,
        selection: {
          ready: false,
          text: 'Select a layer to edit. To change only part of it, also select a shape drawn over that part.',
          mode: null,
          continues: false,
          sourceName: null,
          maskName: null,
        },
      },
    ]);
    expect(figma.rootData.size).toBe(0);
    expect(figma.log).toEqual([]);
  });

  it('keeps the file’s key and document id, and the user’s settings', async () => {
    const { figma, main } = setup();
    figma.rootData.set('hostDocumentKey', 'existing-key');
    figma.rootData.set('documentId', DOC);
    await main.handle({ type: 'save-settings', settings: { serverUrl: 'https://gpu.example.com/', token: 'secret' } });
    expect(figma.storage.get('settings')).toEqual({ serverUrl: 'https://gpu.example.com', token: 'secret' });
    await main.handle({ type: 'ready', freshDocumentKey: KEY });
    expect(last(figma, 'init')).toMatchObject({ documentKey: 'existing-key', documentId: DOC, settings: { serverUrl: 'https://gpu.example.com', token: 'secret' } });
  });

  it('the file’s history marker: read at ready, kept until a result is placed, written at once when the user started a new history', async () => {
    const { figma, main } = setup();
    const theirs = encodeHistoryMarker({ workspace: { id: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', name: 'studio-a' }, documentId: DOC });
    figma.rootData.set('historyMarker', theirs);
    await main.handle({ type: 'ready', freshDocumentKey: KEY });
    expect(last(figma, 'init').historyMarker).toBe(theirs);
    const ours = encodeHistoryMarker({ workspace: { id: 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', name: 'studio-b' }, documentId: DOC2 });
    // opened without a question (e.g. the user's workspace had a history already): nothing written yet
    await main.handle({ type: 'document-opened', documentId: DOC2, historyMarker: ours });
    expect(figma.rootData.get('historyMarker')).toBe(theirs);
    expect(figma.log).toEqual([]);
    // Start: the file names the new history at once, with its key and id
    await main.handle({ type: 'document-opened', documentId: DOC2, historyMarker: ours, record: true });
    expect(Object.fromEntries(figma.rootData)).toEqual({ historyMarker: ours, hostDocumentKey: KEY, documentId: DOC2 });
    expect(parseHistoryMarker(figma.rootData.get('historyMarker'))?.workspace.name).toBe('studio-b');
  });

  it('falls back to default settings when the stored ones are unreadable', async () => {
    const { figma, main } = setup();
    figma.storage.set('settings', { serverUrl: 'ftp://nope', token: 3 });
    await main.handle({ type: 'ready', freshDocumentKey: KEY });
    expect(last(figma, 'init').settings).toEqual({ serverUrl: 'http://localhost:7860', token: '' });
  });

  it('tells the UI what each new selection will do', async () => {
    const { figma, main } = setup();
    await main.handle({ type: 'ready', freshDocumentKey: KEY });
    const photo = figma.photo({ name: 'Photo', width: 200, height: 100 });
    figma.setSelection(photo);
    await main.pushSelection();
    expect(last(figma, 'selection').selection).toMatchObject({ ready: true, mode: 'global', sourceName: 'Photo' });
    figma.tag(photo, DOC, EDIT);
    await main.handle({ type: 'document-opened', documentId: DOC });
    expect(last(figma, 'selection').selection).toMatchObject({ ready: true, continues: true });
  });

  it('reports malformed messages instead of acting on them', async () => {
    const { figma, main } = setup();
    await main.handle({ type: 'prepare-edit', requestId: '', continueFrom: null });
    await main.handle({ type: 'launch-missiles' });
    await main.handle('hello');
    expect(figma.uiMessages.map((m) => m.type)).toEqual(['error', 'error', 'error']);
    expect(last(figma, 'error').message).toMatch(/^ignored a malformed UI message \(without a type\)/);
  });

  describe('prepare-edit', () => {
    it('a global edit: the layer’s PNG and its size, parent source, no mask', async () => {
      const { figma, main } = setup();
      await main.handle({ type: 'ready', freshDocumentKey: KEY });
      const photo = figma.photo({ name: 'Photo', width: 200, height: 100 });
      figma.setSelection(photo);
      await main.handle({ type: 'prepare-edit', requestId: 'r1', continueFrom: null });
      const inputs = last(figma, 'edit-inputs');
      expect(inputs).toMatchObject({ requestId: 'r1', sourceNodeId: photo.id, sourceName: 'Photo', parent: { kind: 'source' }, mask: null });
      expect(inputs.image).toMatchObject({ width: 200, height: 100 });
      expect(decodeFakePng(inputs.image!.png).scene.name).toBe('Photo');
    });

    it('a masked edit: a mask PNG of the same size; no temporary frame left', async () => {
      const { figma, main } = setup();
      await main.handle({ type: 'ready', freshDocumentKey: KEY });
      const photo = figma.photo({ name: 'Photo', width: 200, height: 100 });
      const blob = figma.ellipse({ name: 'Blob', x: 20, y: 20, width: 30, height: 30 });
      figma.setSelection(blob, photo);
      await main.handle({ type: 'prepare-edit', requestId: 'r2', continueFrom: null });
      const inputs = last(figma, 'edit-inputs');
      expect(inputs.mask).toMatchObject({ width: 200, height: 100 });
      expect(decodeFakePng(inputs.mask!.png).scene.children[0].bounds).toEqual({ x: 20, y: 20, width: 30, height: 30 });
      expect(figma.all().some((n) => n.name === MASK_FRAME_NAME)).toBe(false);
    });

    it('a result layer: continues from its edit and sends its current pixels', async () => {
      const { figma, main } = setup();
      await main.handle({ type: 'ready', freshDocumentKey: KEY });
      await main.handle({ type: 'document-opened', documentId: DOC });
      const result = figma.photo({ name: 'make it blue', width: 64, height: 64 });
      figma.tag(result, DOC, EDIT);
      figma.setSelection(result);
      await main.handle({ type: 'prepare-edit', requestId: 'r3', continueFrom: null });
      const inputs = last(figma, 'edit-inputs');
      expect(inputs.parent).toEqual({ kind: 'edit', editId: EDIT });
      expect(inputs.image).toMatchObject({ width: 64, height: 64 });
    });

    it('a pinned history edit: that edit is the parent and no pixels are exported', async () => {
      const { figma, main } = setup();
      await main.handle({ type: 'ready', freshDocumentKey: KEY });
      const photo = figma.photo({ width: 64, height: 64 });
      figma.setSelection(photo);
      await main.handle({ type: 'prepare-edit', requestId: 'r4', continueFrom: { editId: EDIT } });
      const inputs = last(figma, 'edit-inputs');
      expect(inputs).toMatchObject({ parent: { kind: 'edit', editId: EDIT }, image: null, mask: null, sourceNodeId: photo.id });
      expect(figma.log.some((l) => l.startsWith('export:'))).toBe(false);
    });

    it('an unusable selection or a failed export: request-failed with a message for the user', async () => {
      const { figma, main } = setup();
      await main.handle({ type: 'ready', freshDocumentKey: KEY });
      await main.handle({ type: 'prepare-edit', requestId: 'r5', continueFrom: null });
      expect(last(figma, 'request-failed')).toEqual({
        type: 'request-failed',
        requestId: 'r5',
        message: 'Select a layer to edit. To change only part of it, also select a shape drawn over that part.',
      });
      const photo = figma.photo({ name: 'Photo' });
      figma.setSelection(photo);
      figma.failExportOf = photo.id;
      await main.handle({ type: 'prepare-edit', requestId: 'r6', continueFrom: null });
      expect(last(figma, 'request-failed')).toEqual({ type: 'request-failed', requestId: 'r6', message: 'Figma could not export "Photo": export failed (simulated)' });
    });
  });

  describe('place-result (one message per variation)', () => {
    const message = (nodeId: string, index: number, count: number, png = fakePng(200, 100)) => ({
      type: 'place-result' as const,
      requestId: `p${index}`,
      placementId: 'pl1',
      index,
      count,
      target: { kind: 'node' as const, nodeId },
      instruction: 'make it pop',
      documentId: DOC,
      editId: `${EDIT.slice(0, -1)}${index}`,
      png,
    });

    it('places each as it comes, answers with its id, then with all; the file’s key and document id go with it', async () => {
      const { figma, main } = setup();
      await main.handle({ type: 'ready', freshDocumentKey: KEY });
      const marker = encodeHistoryMarker({ workspace: { id: 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', name: 'studio-b' }, documentId: DOC });
      await main.handle({ type: 'document-opened', documentId: DOC, historyMarker: marker });
      expect(figma.rootData.size).toBe(0);
      const photo = figma.photo({ width: 200, height: 100 });
      await main.handle(message(photo.id, 0, 2));
      const first = last(figma, 'placed');
      expect(first.requestId).toBe('p0');
      expect(figma.get(first.nodeIds[0]).name).toBe('make it pop (1/2)');
      const commitsBefore = figma.log.filter((l) => l === 'commit').length;
      await main.handle(message(photo.id, 1, 2));
      const all = last(figma, 'placed');
      expect(all.requestId).toBe('p1');
      expect(all.nodeIds).toEqual([first.nodeIds[0], expect.any(String)]);
      expect(figma.log.filter((l) => l === 'commit').length).toBe(commitsBefore + 1);
      expect(Object.fromEntries(figma.rootData)).toEqual({ hostDocumentKey: KEY, documentId: DOC, historyMarker: marker });
      // the file writes are part of the result's undo step
      expect(figma.log.indexOf('rootData:hostDocumentKey')).toBeLessThan(figma.log.lastIndexOf('commit'));
    });

    it('a placement that fails half way: request-failed, and the layers it made are gone', async () => {
      const { figma, main } = setup();
      await main.handle({ type: 'ready', freshDocumentKey: KEY });
      const photo = figma.photo({ width: 200, height: 100 });
      const before = figma.all().length;
      await main.handle(message(photo.id, 0, 2));
      expect(figma.all()).toHaveLength(before + 1);
      await main.handle(message(photo.id, 1, 2, new Uint8Array([1, 2, 3])));
      expect(last(figma, 'request-failed')).toEqual({
        type: 'request-failed',
        requestId: 'p1',
        message: 'Figma could not take the result image (Image type is unsupported). Nothing was added.',
      });
      expect(figma.all()).toHaveLength(before);
      expect(figma.log).not.toContain('commit');
    });

    it('place-abandon (the UI could not download the next one) removes what was placed', async () => {
      const { figma, main } = setup();
      await main.handle({ type: 'ready', freshDocumentKey: KEY });
      const photo = figma.photo({ width: 200, height: 100 });
      const before = figma.all().length;
      await main.handle(message(photo.id, 0, 3));
      await main.handle({ type: 'place-abandon', placementId: 'pl1' });
      expect(figma.all()).toHaveLength(before);
      await main.handle(message(photo.id, 1, 3));
      expect(last(figma, 'request-failed').message).toMatch(/not under way/);
    });
  });

  it('removes a mask frame left by a plugin closed mid-export: at close, and at the next start', async () => {
    const figma = new FakeFigma();
    const photo = figma.photo({ width: 100, height: 100 });
    const leftover = figma.createMaskFrame({ x: 0, y: 0, width: 100, height: 100 }, MASK_FRAME_NAME); // a previous run's
    new MainController(figma).start();
    expect(figma.all().map((n) => n.id)).toEqual([photo.id]);
    figma.createMaskFrame({ x: 0, y: 0, width: 100, height: 100 }, MASK_FRAME_NAME); // this run's, export pending
    figma.close();
    expect(figma.all().map((n) => n.id)).toEqual([photo.id]);
    expect(figma.log).toContain(`remove:${leftover}`);
  });

  it('exports a semi-transparent or blended source without its own look (the result layer gets it)', async () => {
    const { figma, main } = setup();
    await main.handle({ type: 'ready', freshDocumentKey: KEY });
    const photo = figma.photo({ width: 200, height: 100, opacity: 0.5, blendMode: 'MULTIPLY' });
    figma.setSelection(photo);
    await main.handle({ type: 'prepare-edit', requestId: 'r1', continueFrom: null });
    const inputs = last(figma, 'edit-inputs');
    expect(decodeFakePng(inputs.image!.png).scene).toMatchObject({ opacity: 1, blendMode: 'NORMAL' });
    expect(figma.log).toContain(`export:${photo.id}:own-look`);
    figma.setSelection(figma.photo({ width: 10, height: 10 }));
    await main.handle({ type: 'prepare-edit', requestId: 'r2', continueFrom: null });
    expect(figma.log.at(-1)).toMatch(/^export:[\d:]+$/); // a plain layer exports as it is
  });

  it('shows notifications the UI asks for', async () => {
    const { figma, main } = setup();
    await main.handle({ type: 'notify', message: 'done', error: false });
    expect(figma.notifications).toEqual([{ message: 'done', error: false }]);
  });
});
