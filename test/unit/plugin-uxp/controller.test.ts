import sharp from 'sharp';
import { ClientError, encodeHistoryMarker, parseHistoryMarker, type SignedIn } from '../../../shared/client';
import { DEFAULT_FORM, PanelController, historyItems, optionsFromForm, type EditForm, type PanelState } from '../../../plugin-uxp/src/controller';
import { DocumentRecords, XMP_DOCUMENT_KEY, XMP_HISTORY_MARKER, XMP_LAYER_EDITS, parseEditRecords } from '../../../plugin-uxp/src/identity';
import { FakeApi, PREVIEW, fakeEdit, snapshot } from './fake-api';
import { FakePhotoshop, type FakeDocumentSpec } from './fake-photoshop';
import { at, gradient, pixels8, selection } from './fixtures';

let uuidCounter = 0;
const uuid = () => `00000000-0000-4000-8000-${String(++uuidCounter).padStart(12, '0')}`;

function setup(spec: Partial<FakeDocumentSpec> = {}) {
  const fake = new FakePhotoshop();
  const doc = fake.addDocument({
    title: 'cat.psd',
    width: 16,
    height: 12,
    layers: [{ name: 'photo', pixels: pixels8(2, 2, 8, 6, gradient) }, { name: 'Background', isBackground: true, pixels: pixels8(0, 0, 16, 12, () => [255, 255, 255, 255]) }],
    active: ['photo'],
    ...spec,
  });
  const api = new FakeApi();
  const records = new DocumentRecords(fake, uuid, 'sess');
  const controller = new PanelController({ host: fake, client: () => api, records });
  const states: PanelState[] = [];
  controller.subscribe((s) => states.push(s));
  return { fake, doc, api, controller, states };
}

const form = (patch: Partial<EditForm> = {}): EditForm => ({ ...DEFAULT_FORM, instruction: 'make it red', ...patch });

describe('Apply', () => {
  it('captures, uploads, polls and places the result above the source with the selection as its mask', async () => {
    const sel = selection({ left: 0, top: 0, right: 6, bottom: 16 }, (x) => (x < 4 ? 255 : 90));
    const { fake, doc, api, controller, states } = setup({ selection: sel });
    await controller.apply(form({ steps: 12, strength: 0.8, spread: 0.25, locality: 'blend', seed: 42 }));

    const s = controller.getState();
    expect(s.error).toBeNull();
    expect(s.phase).toBe('done');
    expect(s.busy).toBe(false);
    expect(fake.stack(doc)).toEqual(['make it red', 'photo', 'Background']);
    const layer = fake.layerByName(doc, 'make it red');
    expect(layer.pixels).toMatchObject({ left: 2, top: 2, width: 8, height: 6 });
    const src = pixels8(2, 2, 8, 6, gradient);
    expect(Array.from(layer.pixels!.data)).toEqual(Array.from(fakeEdit({ width: 8, height: 6, rgba: src.data as Uint8Array }, 0).rgba));
    // mask: the selection inside the layer (x 2..9): 255 for x < 4, 90 for 4..5, 0 beyond
    expect(Array.from(layer.mask!.data.subarray(0, 8))).toEqual([255, 255, 90, 90, 0, 0, 0, 0]);
    expect(doc.history).toEqual(['Open', 'layerloop: make it red']);
    expect(fake.liveImageData()).toBe(0);

    // the request
    const req = api.jobs[0].request;
    expect(req.parent).toEqual({ kind: 'source', imageSha256: api.uploads[0] });
    expect(req.regions).toEqual([{ instruction: 'make it red', maskSha256: api.uploads[1] }]);
    expect(req.options).toEqual({ steps: 12, locality: 'blend', spread: 0.25, strength: 0.8, variations: 1, seed: 42 });
    const mask = api.blobs.get(api.uploads[1])!;
    expect(at(mask.rgba, 8, 0, 0)).toEqual([255, 255, 255, 255]);
    expect(at(mask.rgba, 8, 2, 0)).toEqual([90, 90, 90, 255]);
    expect(at(mask.rgba, 8, 7, 5)).toEqual([0, 0, 0, 255]);
    expect(api.documents.get(doc.xmp.get(XMP_DOCUMENT_KEY)!)).toBe(req.documentId);

    // progress went queued -> running with previews
    const phases = states.map((x) => x.phase).filter((p, i, all) => p !== all[i - 1]);
    expect(phases).toEqual(['preparing', 'uploading', 'queued', 'running', 'placing', 'done']);
    expect(states.some((x) => x.status === 'Downloading the result…')).toBe(true);
    expect(api.hosts).toEqual(['photoshop']);
    expect(states.some((x) => x.phase === 'queued' && x.queuePosition === 1)).toBe(true);
    expect(states.some((x) => x.phase === 'running' && x.preview === PREVIEW(5) && x.progress?.step === 5)).toBe(true);
    expect(states.some((x) => x.phase === 'running' && x.preview === PREVIEW(10) && x.progress?.step === 10)).toBe(true);
    expect(s.seed).toBe(42);
    // history: the source and the edit, newest first, the edit marked current (its layer is active)
    expect(s.history.map((h) => [h.kind, h.label, h.depth, h.current])).toEqual([
      ['edit', 'make it red', 1, true],
      ['source', 'Original layer', 0, false],
    ]);
  });

  it('continues from the stored edit when a result layer is selected', async () => {
    const { fake, doc, api, controller } = setup();
    await controller.apply(form());
    const firstEdit = api.jobs[0];
    expect(doc.activeLayerIds).toEqual([fake.layerByName(doc, 'make it red').id]);
    await controller.apply(form({ instruction: 'now blue' }));
    expect(controller.getState().error).toBeNull();
    const second = api.jobs[1].request;
    const pixelsUpload = api.uploads[api.uploads.length - 1];
    const firstEditId = api.nodes.find((n) => n.kind === 'edit' && n.instruction === 'make it red')!.id;
    expect(second.parent).toEqual({ kind: 'edit', editId: firstEditId, pixelsSha256: pixelsUpload });
    // the layer's pixels as uploaded are exactly the stored result: the server can reuse the latent
    expect(pixelsUpload).toBe(api.nodes.find((n) => n.id === firstEditId)!.resultImageSha256);
    expect(second.documentId).toBe(firstEdit.request.documentId);
    expect(fake.stack(doc)).toEqual(['now blue', 'make it red', 'photo', 'Background']);
    expect(second.regions[0].maskSha256).toBeNull(); // no selection: a global edit
  });

  it('keeps continuing after saving and reopening the document', async () => {
    const { fake, doc, api, controller } = setup();
    await controller.apply(form());
    const reopened = fake.saveAndReopen(doc);
    const again = new PanelController({ host: fake, client: () => api, records: new DocumentRecords(fake, uuid, 'sess-2') });
    await again.apply(form({ instruction: 'now blue' }));
    expect(api.jobs[1].request.parent.kind).toBe('edit');
    expect(api.jobs[1].request.documentId).toBe(api.jobs[0].request.documentId);
    expect(fake.stack(reopened)[0]).toBe('now blue');
  });

  it('falls back to the layer pixels when the server does not know the parent edit', async () => {
    const { api, controller } = setup();
    await controller.apply(form());
    api.failCreate = new ClientError('not-found', 'edit not found', 404, 'NOT_FOUND');
    await controller.apply(form({ instruction: 'again' }));
    expect(controller.getState().error).toBeNull();
    expect(controller.getState().warning).toMatch(/started from the layer’s pixels/);
    expect(api.jobs[1].request.parent).toEqual({ kind: 'source', imageSha256: api.uploads[api.uploads.length - 1] });
  });

  it('shows a failed job\'s message and changes nothing', async () => {
    const { doc, api, controller } = setup();
    api.script = (job) => [snapshot(job.id, job.request.documentId, { state: 'running' }), snapshot(job.id, job.request.documentId, { state: 'failed', error: 'the GPU ran out of memory: try fewer variations' })];
    await controller.apply(form());
    expect(controller.getState()).toMatchObject({ phase: 'failed', busy: false, error: 'The edit failed on the server: the GPU ran out of memory: try fewer variations' });
    expect(doc.history).toEqual(['Open']);
  });

  it('shows clear messages without calling the server for what cannot be edited', async () => {
    const { api, controller } = setup({ layers: [{ name: 'Title', kind: 'text' }], active: ['Title'] });
    await controller.apply(form());
    expect(controller.getState()).toMatchObject({ phase: 'failed', error: expect.stringMatching(/"Title" is a text layer/) });
    await controller.apply(form({ instruction: '   ' }));
    expect(controller.getState().error).toMatch(/Type an instruction/);
    await controller.apply(form({ steps: 0 }));
    expect(controller.getState().error).toBe('options.steps must be an integer between 1 and 100, got 0'.replace('options.', ''));
    expect(api.uploads).toHaveLength(0);
    expect(api.jobs).toHaveLength(0);
  });

  it('says so when no document is open', async () => {
    const fake = new FakePhotoshop();
    const controller = new PanelController({ host: fake, client: () => new FakeApi(), records: new DocumentRecords(fake, uuid, 's') });
    await controller.apply(form());
    expect(controller.getState().error).toMatch(/No document is open/);
    expect(controller.getState().historyStatus).toMatch(/No document is open/);
  });
});

describe('masks from words', () => {
  it('Apply with words sends maskText and uploads no mask, even with a selection', async () => {
    const sel = selection({ left: 0, top: 0, right: 6, bottom: 16 }, () => 255);
    const { api, controller } = setup({ selection: sel });
    await controller.apply(form({ maskText: ' the circle ' }));
    expect(controller.getState().error).toBeNull();
    expect(api.uploads).toHaveLength(1); // the layer's pixels only
    expect(api.jobs[0].request.regions).toEqual([{ instruction: 'make it red', maskText: 'the circle' }]);
  });

  it('Preview shows the mask the words give on the active layer, without queueing anything', async () => {
    const { api, controller } = setup();
    await controller.previewMask(' the circle ');
    const s = controller.getState();
    expect(s.error).toBeNull();
    expect(api.previews).toEqual([{ documentId: expect.any(String), parent: { kind: 'source', imageSha256: api.uploads[0] }, maskText: 'the circle' }]);
    const png = Buffer.from(s.maskPreview!.dataUrl.replace(/^data:image\/png;base64,/, ''), 'base64');
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([8, 6]); // the layer's size
    expect([data[0], data[(info.width - 1) * info.channels]]).toEqual([255, 0]); // the fake's left half
    expect(s.maskPreview!.caption).toBe('"the circle" covers 50 % of the layer: white is what Apply will change.');
    expect(api.jobs).toEqual([]);
    controller.clearMaskPreview(); // the words changed
    expect(controller.getState().maskPreview).toBeNull();
  });

  it("shows the server's message when the words name nothing, and no preview", async () => {
    const { api, controller } = setup();
    api.failPreview = new ClientError('bad-request', 'maskText: "the diamond" matches nothing in this image (the mask came out empty): name something the image shows, or draw a mask', 400, 'BAD_REQUEST');
    await controller.previewMask('the diamond');
    expect(controller.getState().error).toMatch(/"the diamond" matches nothing in this image/);
    expect(controller.getState().maskPreview).toBeNull();
    await controller.previewMask('  ');
    expect(controller.getState().error).toBe('Type where to edit in words first, e.g. "the circle".');
  });
});

describe('Progress', () => {
  it('ends with a full bar even when the job finished between two polls (no running snapshot seen)', async () => {
    const { api, controller } = setup();
    api.script = (job, result) => [
      snapshot(job.id, job.request.documentId, { state: 'queued', position: 0 }),
      snapshot(job.id, job.request.documentId, { state: 'succeeded', startedAt: 1, finishedAt: 2, result }),
    ];
    const fractions: number[] = [];
    controller.subscribe((s) => {
      if (s.progress && s.progress.totalSteps > 0) fractions.push(s.progress.step / s.progress.totalSteps);
    });
    await controller.apply(form());
    expect(controller.getState().phase).toBe('done');
    expect(fractions).toContain(1);
  });
});

describe('Cancel', () => {
  it('cancels a running job: no layer, state cancelled', async () => {
    const { doc, api, controller } = setup();
    api.script = (job) => [
      snapshot(job.id, job.request.documentId, { state: 'running', progress: { step: 1, totalSteps: 20, variation: 0 } }),
      snapshot(job.id, job.request.documentId, { state: 'running', progress: { step: 2, totalSteps: 20, variation: 0 } }),
    ];
    const cancelSpy = jest.spyOn(api, 'cancelJob');
    controller.subscribe((s) => {
      if (s.phase === 'running' && s.progress?.step === 2 && s.canCancel) void controller.cancel();
    });
    await controller.apply(form());
    expect(cancelSpy).toHaveBeenCalledTimes(1);
    expect(controller.getState()).toMatchObject({ phase: 'cancelled', busy: false, status: 'Cancelled. Nothing was added to the document.' });
    expect(doc.history).toEqual(['Open']);
  });

  it('cancels before the job exists (during the upload) without creating it', async () => {
    const { api, controller } = setup();
    const upload = api.putImage.bind(api);
    api.putImage = async (...args) => {
      void controller.cancel();
      return upload(...args);
    };
    await controller.apply(form());
    expect(controller.getState().phase).toBe('cancelled');
    expect(api.jobs).toHaveLength(0);
  });

  it('cancels a job the server accepted while the panel was still waiting for its id', async () => {
    const { doc, api, controller } = setup();
    const create = api.createEdit.bind(api);
    api.createEdit = async (request) => {
      void controller.cancel(); // the user presses Cancel while edits.create is on its way
      return create(request);
    };
    await controller.apply(form());
    expect(controller.getState()).toMatchObject({ phase: 'cancelled', busy: false });
    expect(api.jobs.map((j) => j.cancelled)).toEqual([true]); // not left running on the server
    expect(doc.history).toEqual(['Open']);
  });

  it('does not place a result that finished before the cancel arrived', async () => {
    const { doc, api, controller } = setup();
    api.cancelJob = async () => ({ cancelled: false, state: 'succeeded' }); // too late: the server finishes anyway
    controller.subscribe((s) => {
      if (s.phase === 'running' && s.canCancel) void controller.cancel();
    });
    await controller.apply(form());
    expect(controller.getState()).toMatchObject({ phase: 'cancelled', status: expect.stringMatching(/already finished: the result is in the history/) });
    expect(doc.history).toEqual(['Open']);
  });
});

describe('the source layer’s look and mask', () => {
  it('the result gets the source’s opacity and blend mode, and its mask also hides what the source’s own mask hid', async () => {
    const userMask = selection({ left: 0, top: 0, right: 16, bottom: 12 }, (x) => (x < 5 ? 0 : 255));
    const sel = selection({ left: 0, top: 0, right: 16, bottom: 12 }, (_x, y) => (y < 4 ? 255 : 0));
    const { fake, doc, controller } = setup({
      layers: [{ name: 'photo', look: { opacity: 50, fillOpacity: 100, blendMode: 'multiply' }, mask: userMask, pixels: pixels8(2, 2, 8, 6, gradient) }],
      selection: sel,
    });
    await controller.apply(form());
    expect(controller.getState().error).toBeNull();
    const result = fake.layerByName(doc, 'make it red');
    expect(result.look).toEqual({ opacity: 50, fillOpacity: 100, blendMode: 'multiply' });
    // over the layer's bounds (2,2)-(10,8): selected rows 2..3, and shown columns 5..9 only
    const m = result.mask!;
    expect(m.bounds).toEqual({ left: 2, top: 2, right: 10, bottom: 8 });
    expect(Array.from(m.data.subarray(0, 8))).toEqual([0, 0, 0, 255, 255, 255, 255, 255]);
    expect(Array.from(m.data.subarray(16, 24))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

describe('following the active document', () => {
  it('reloads the history when the user switches documents (the panel’s show event fires only once)', async () => {
    const { fake, controller } = setup();
    controller.followDocuments();
    await controller.refreshHistory();
    expect(controller.getState().historyTitle).toBe('cat.psd');
    const other = fake.addDocument({ title: 'dog.psd', width: 4, height: 4, layers: [{ name: 'a', pixels: pixels8(0, 0, 4, 4, gradient) }] });
    fake.switchTo(other);
    await new Promise((r) => setTimeout(r, 10));
    expect(controller.getState().historyTitle).toBe('dog.psd');
  });
});

describe('variations', () => {
  it('lets the user pick one, then place all, each its own layer (and undo step), one image in memory at a time', async () => {
    const { fake, doc, api, controller } = setup();
    await controller.apply(form({ variations: 3 }));
    let s = controller.getState();
    expect(s.phase).toBe('picking');
    expect(s.variations.map((v) => v.index)).toEqual([0, 1, 2]);
    await new Promise((r) => setTimeout(r, 20)); // thumbnails load in the background
    // small PNGs made in the panel from the downloaded pixels (UXP cannot decode PNGs; full-size data URLs are huge)
    const thumbnails = controller.getState().variations.map((v) => v.thumbnail ?? '');
    for (const [k, thumbnail] of thumbnails.entries()) {
      expect(thumbnail).toMatch(/^data:image\/png;base64,/);
      const { data, info } = await sharp(Buffer.from(thumbnail.slice(22), 'base64')).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([8, 6, 4]);
      expect(data[1]).toBe(k * 10); // variation k's G (fakeEdit)
    }
    expect(doc.history).toEqual(['Open']);

    await controller.placeVariations([1]);
    s = controller.getState();
    expect(s.error).toBeNull();
    expect(fake.stack(doc)).toEqual(['make it red #2', 'photo', 'Background']);
    const v2 = fake.layerByName(doc, 'make it red #2');
    expect(v2.pixels!.data[1]).toBe(10); // variation 1's G
    expect(s.variations.map((v) => v.placed)).toEqual([false, true, false]);
    // every variation's place is stored with it, so unplaced ones restore at the right spot after reopening
    expect(Object.values(parseEditRecords(doc.xmp.get(XMP_LAYER_EDITS)!).places)).toEqual([[2, 2], [2, 2], [2, 2]]);
    expect(s.phase).toBe('picking');

    const order: string[] = [];
    const download = api.getRgba.bind(api);
    api.getRgba = async (sha) => {
      order.push('download');
      return download(sha);
    };
    const put = fake.putPixels.bind(fake);
    fake.putPixels = async (o) => {
      order.push('place');
      return put(o);
    };
    await controller.placeVariations('all');
    expect(order).toEqual(['download', 'place', 'download', 'place', 'download', 'place']);
    // each placement starts directly above the source layer, each variation above the previous one
    expect(fake.stack(doc)).toEqual(['make it red #2', 'make it red #3', 'make it red #2', 'make it red #1', 'photo', 'Background']);
    expect(doc.history).toEqual(['Open', 'layerloop: make it red', 'layerloop: make it red', 'layerloop: make it red', 'layerloop: make it red']);
    expect(fake.liveImageData()).toBe(0);
    controller.dismissVariations();
    expect(controller.getState()).toMatchObject({ phase: 'idle', variations: [] });
    expect(api.jobs).toHaveLength(1);
  });
});

describe('history', () => {
  it('"continue from here" restores an entry as a layer at its place, mapped to the edit', async () => {
    const { fake, doc, api, controller } = setup();
    await controller.apply(form({ variations: 2 }));
    controller.dismissVariations(); // placed none
    await controller.refreshHistory();
    const second = controller.getState().history.find((h) => h.variation === 1)!;
    doc.activeLayerIds = [fake.layerByName(doc, 'Background').id];
    await controller.continueFrom(second.editId);
    expect(controller.getState().error).toBeNull();
    expect(fake.stack(doc)).toEqual(['photo', 'make it red (from history)', 'Background']);
    const restored = fake.layerByName(doc, 'make it red (from history)');
    expect(restored.pixels).toMatchObject({ left: 2, top: 2, width: 8, height: 6 }); // where the edit was made (recorded place)
    expect(restored.mask).toBeNull();
    expect(doc.history).toEqual(['Open', 'layerloop: restore make it red']);
    // the restored layer is active; the next Apply continues from that edit
    await controller.apply(form({ instruction: 'sharper' }));
    expect(api.jobs[1].request.parent).toMatchObject({ kind: 'edit', editId: second.editId });
  });

  it('shows nothing for a document that has never been edited, without creating it on the server', async () => {
    const { api, controller } = setup();
    await controller.refreshHistory();
    expect(controller.getState()).toMatchObject({ history: [], historyTitle: 'cat.psd', historyStatus: 'No layerloop edits in this document yet.' });
    expect(api.documents.size).toBe(0);
  });

  it('orders entries newest first with their depth in the tree', () => {
    const n = (id: string, parentId: string | null, kind: 'source' | 'edit' = 'edit') => ({ id, parentId, kind, instruction: kind === 'edit' ? id : null, seed: 1, variation: 0, resultImageSha256: '', createdAt: '', authorName: null });
    const items = historyItems([n('s', null, 'source'), n('a', 's'), n('b', 'a'), n('c', 's')], 'b');
    expect(items.map((i) => [i.editId, i.depth, i.current])).toEqual([
      ['c', 1, false],
      ['b', 2, true],
      ['a', 1, false],
      ['s', 0, false],
    ]);
  });
});

describe('reference images and authors', () => {
  const klein = { name: 'tiny-klein', provider: 'cpu', family: 'FLUX.2 klein', readsReferences: true };
  const twoLayers = { layers: [{ name: 'photo', pixels: pixels8(2, 2, 8, 6, gradient) }, { name: 'style', pixels: pixels8(0, 0, 3, 2, () => [10, 20, 30, 255]) }], active: ['style'] };

  it('sends the chosen layer as the reference of the next Apply on a server whose model reads them, then forgets it', async () => {
    const { fake, doc, api, controller } = setup(twoLayers);
    api.model = klein;
    await controller.loadServerInfo();
    expect(controller.getState()).toMatchObject({ model: 'tiny-klein (FLUX.2 klein) on cpu', referencesOffered: true, reference: null });
    await controller.useLayerAsReference();
    expect(controller.getState().reference).toEqual({ layerName: 'style', width: 3, height: 2 });
    fake.setActive(doc, ['photo']);
    await controller.apply(form());
    expect(controller.getState().error).toBeNull();
    const req = api.jobs[0].request;
    expect(req.references).toHaveLength(1);
    const ref = api.blobs.get(req.references![0])!;
    expect([ref.width, ref.height]).toEqual([3, 2]);
    expect(at(ref.rgba, 3, 2, 1)).toEqual([10, 20, 30, 255]);
    expect(controller.getState().reference).toBeNull();
    await controller.apply(form());
    expect(api.jobs[1].request.references).toBeUndefined();
  });

  it('ignores the selection when reading a reference layer, and Remove clears it', async () => {
    const sel = selection({ left: 10, top: 8, right: 16, bottom: 12 }, () => 255);
    const { api, controller } = setup({ ...twoLayers, selection: sel });
    api.model = klein;
    await controller.loadServerInfo();
    await controller.useLayerAsReference();
    expect(controller.getState()).toMatchObject({ error: null, reference: { layerName: 'style' } });
    controller.removeReference();
    expect(controller.getState().reference).toBeNull();
  });

  it('sends no reference to a server whose model reads none', async () => {
    const { fake, doc, api, controller } = setup(twoLayers);
    await controller.loadServerInfo();
    expect(controller.getState()).toMatchObject({ model: 'fake on cpu', referencesOffered: false });
    await controller.useLayerAsReference();
    fake.setActive(doc, ['photo']);
    await controller.apply(form());
    expect(api.jobs[0].request.references).toBeUndefined();
  });

  it('shows who made each history entry', async () => {
    const { api, controller } = setup();
    api.authorName = 'ben';
    await controller.apply(form());
    expect(controller.getState().history.map((h) => [h.label, h.author])).toEqual([
      ['make it red', 'by ben'],
      ['Original layer', 'by ben'],
    ]);
  });
});

describe("a document whose history is in another workspace (its XMP marker says so)", () => {
  const STUDIO_A = { id: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', name: 'studio-a' };
  const STUDIO_B = { id: 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', name: 'studio-b' };
  const ben: SignedIn = { user: { id: 'u-ben', name: 'ben', role: 'member' }, workspaces: [STUDIO_B], defaultWorkspaceId: STUDIO_B.id, via: 'token' };
  const KEY = '99999999-9999-4999-8999-999999999999';
  const QUESTION = "This file's layerloop history belongs to workspace «studio-a» (recorded in the file), which you are not a member of. Start a new history in «studio-b»?";

  function fromStudioA() {
    const h = setup();
    h.api.signedIn = ben;
    const theirs = encodeHistoryMarker({ workspace: STUDIO_A, documentId: '12121212-1212-4121-8121-121212121212' });
    h.doc.xmp.set(XMP_DOCUMENT_KEY, KEY);
    h.doc.xmp.set(XMP_HISTORY_MARKER, theirs);
    return { ...h, theirs };
  }

  it('Apply asks instead of starting a history; nothing is created on the server or written to the document', async () => {
    const { api, doc, controller, theirs } = fromStudioA();
    await controller.apply(form());
    const s = controller.getState();
    expect(s.elsewhere).toBe(QUESTION);
    expect(s.error).toBe("This document's layerloop history is in another workspace: answer the question in the panel first (Start a new history, or Cancel).");
    expect(s.historyStatus).toBe('This document’s layerloop history is in another workspace.');
    expect(api.documents.size).toBe(0);
    expect(api.jobs).toEqual([]);
    expect(api.uploads).toEqual([]);
    expect(api.openOptions.every((o) => o.create === false)).toBe(true);
    expect(doc.xmp.get(XMP_HISTORY_MARKER)).toBe(theirs);
  });

  it('Start opens a new history in the user’s workspace and rewrites the marker at once; Apply then edits there', async () => {
    const { api, doc, controller } = fromStudioA();
    await controller.apply(form());
    await controller.startNewHistory();
    const documentId = api.documents.get(`${STUDIO_B.id}|${KEY}`);
    expect(documentId).toBeDefined();
    expect(parseHistoryMarker(doc.xmp.get(XMP_HISTORY_MARKER))).toEqual({ workspace: STUDIO_B, documentId });
    expect(doc.history).toEqual(['Open', 'layerloop: start a new history']); // one named undo step
    expect(controller.getState()).toMatchObject({ elsewhere: null, error: null, historyWorkspace: 'studio-b', status: 'Started a new layerloop history for this document in your workspace: press Apply to edit.' });
    await controller.apply(form());
    expect(controller.getState().phase).toBe('done');
    expect(api.jobs[0].request.documentId).toBe(documentId);
    expect(api.documents.size).toBe(1);
  });

  it('Cancel starts nothing and leaves the marker; the next Apply asks again', async () => {
    const { api, doc, controller, theirs } = fromStudioA();
    await controller.apply(form());
    controller.cancelNewHistory();
    expect(controller.getState()).toMatchObject({ elsewhere: null, error: null, status: "No history was started: this document's layerloop history is in another workspace. Apply asks again." });
    await controller.apply(form());
    expect(controller.getState().elsewhere).toBe(QUESTION);
    expect(api.documents.size).toBe(0);
    expect(doc.xmp.get(XMP_HISTORY_MARKER)).toBe(theirs);
  });

  it('a member of the marked workspace continues its history without a question; the first result records the marker', async () => {
    const { api, doc, controller } = fromStudioA();
    api.signedIn = { ...ben, workspaces: [STUDIO_B, STUDIO_A] };
    api.documents.set(`${STUDIO_A.id}|${KEY}`, '12121212-1212-4121-8121-121212121212');
    await controller.apply(form());
    expect(controller.getState()).toMatchObject({ phase: 'done', elsewhere: null, historyWorkspace: 'studio-a' });
    expect(api.jobs[0].request.documentId).toBe('12121212-1212-4121-8121-121212121212');
    expect(api.openOptions).toEqual([{ workspaceId: STUDIO_A.id }]);
    expect(parseHistoryMarker(doc.xmp.get(XMP_HISTORY_MARKER))?.workspace).toEqual(STUDIO_A);
  });

  it('a document without a marker gets one with its first result', async () => {
    const { api, doc, controller } = setup();
    api.signedIn = ben;
    await controller.apply(form());
    expect(parseHistoryMarker(doc.xmp.get(XMP_HISTORY_MARKER))).toEqual({ workspace: STUDIO_B, documentId: api.jobs[0].request.documentId });
  });
});

it('validates options with the shared schema', () => {
  expect(optionsFromForm(form({ seed: null }))).toEqual({ steps: 20, locality: 'both', spread: 0, strength: 1, variations: 1 });
  expect(() => optionsFromForm(form({ variations: 9 }))).toThrow('variations must be an integer between 1 and 8, got 9');
  expect(() => optionsFromForm(form({ strength: 0 }))).toThrow('strength must be a number greater than 0 and at most 1, got 0');
});
