/**
 * One Apply end to end inside the plugin: the UI's EditRun and Bridge, the main thread's MainController on
 * the fake FigmaHost (messages structured-cloned both ways, as postMessage does), and a scripted fake server.
 */
import {
  ClientError,
  errorForStatus,
  newSession,
  reduceSession,
  type BlobInfo,
  type CancelResult,
  type EditPhase,
  type HistoryEntry,
  type ImageBody,
  type LayerloopClient,
  type RawImage,
  type ServerHealth,
  type SignedIn,
  type SessionAction,
  type SignalLike,
} from '../../../shared/client';
import type { CreateEditResult, EditRequestInput, JobEvent, JobSnapshot, MaskPreviewInput, MaskPreviewResult } from '../../../shared/protocol';
import { Bridge } from '../../../plugin-figma/src/bridge';
import { MainController } from '../../../plugin-figma/src/controller';
import { buildEditRequest, DEFAULT_FORM, EditRun, formProblem, NO_INSTRUCTION, type EditForm } from '../../../plugin-figma/src/edit-flow';
import { pngSize } from '../../../plugin-figma/src/geometry';
import type { UiToMain } from '../../../plugin-figma/src/messages';
import { decodeFakePng, FakeFigma, fakePng } from './fake-figma';

const DOC = '11111111-1111-4111-8111-111111111111';
const KEY = '44444444-4444-4444-8444-444444444444';
const JOB = '55555555-5555-4555-8555-555555555555';
const EDIT_IDS = ['66666666-6666-4666-8666-000000000001', '66666666-6666-4666-8666-000000000002'];
const PREVIOUS_EDIT = '33333333-3333-4333-8333-333333333333';

const sha = (n: number) => n.toString(16).padStart(64, '0');

/** An async queue: the fake server's event stream. */
class Channel<T> {
  private items: T[] = [];
  private waiting: ((v: T) => void) | null = null;
  push(item: T): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(item);
    } else this.items.push(item);
  }
  next(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => (this.waiting = resolve));
  }
}

class FakeApi implements LayerloopClient {
  readonly serverUrl = 'http://fake:7860';
  uploads: Uint8Array[] = [];
  created: EditRequestInput[] = [];
  cancelled: string[] = [];
  events = new Channel<JobEvent>();
  results = { width: 200, height: 100 };
  blobSizes = new Map<string, { width: number; height: number }>();
  /** resolve to let a pending upload finish */
  uploadGate: Promise<void> | null = null;
  createFails: ClientError | null = null;
  private seq = 0;

  async health(): Promise<ServerHealth> {
    return { status: 'ok', model: { name: 'tiny', provider: 'cpu' }, version: '0', queue: { queued: 0, running: 0 }, store: { writable: true, problems: [] }, authRequired: false };
  }
  async me(): Promise<SignedIn | null> {
    return null;
  }
  async openDocument(): Promise<string> {
    return DOC;
  }
  async history(): Promise<HistoryEntry[]> {
    return [];
  }
  async createEdit(request: EditRequestInput): Promise<CreateEditResult> {
    if (this.createFails) throw this.createFails;
    this.created.push(request);
    return { jobId: JOB, documentId: DOC, position: 1, seed: 7 };
  }
  async *follow(jobId: string, signal?: SignalLike): AsyncGenerator<JobEvent> {
    expect(jobId).toBe(JOB);
    for (;;) {
      const event = await this.events.next();
      if (signal?.aborted) throw new ClientError('aborted', 'cancelled');
      yield event;
      if (['succeeded', 'failed', 'cancelled'].includes(event.type)) return;
    }
  }
  async getJob(): Promise<JobSnapshot> {
    throw new Error('the Figma UI follows jobs with follow()');
  }
  previews: MaskPreviewInput[] = [];
  /** masks.preview: records the call; the mask blob is sha(500) at the size of the layer's upload */
  async previewMask(input: MaskPreviewInput): Promise<MaskPreviewResult> {
    this.previews.push(input);
    const size = pngSize(this.uploads[this.uploads.length - 1])!;
    this.blobSizes.set(sha(500), size);
    return { maskSha256: sha(500), ...size, coverage: 0.06, segmenter: 'fake' };
  }
  async getRgba(): Promise<RawImage> {
    throw new Error('the Figma UI reads results as PNG');
  }
  async cancelJob(jobId: string): Promise<CancelResult> {
    this.cancelled.push(jobId);
    this.emit({ type: 'cancelled' });
    return { cancelled: true, state: 'running' };
  }
  async putImage(png: Uint8Array, body: ImageBody, signal?: SignalLike): Promise<BlobInfo> {
    expect(body).toEqual({ contentType: 'image/png' });
    if (this.uploadGate) {
      await this.uploadGate;
      if (signal?.aborted) throw new ClientError('aborted', 'cancelled');
    }
    this.uploads.push(png);
    return { sha256: sha(this.uploads.length), ...pngSize(png)! };
  }
  async getBlob(sha256: string): Promise<Uint8Array> {
    const size = this.blobSizes.get(sha256) ?? this.results;
    return fakePng(size.width, size.height);
  }
  emit(e: Record<string, unknown>): void {
    this.events.push({ jobId: JOB, seq: ++this.seq, ...e } as JobEvent);
  }
  /** a whole successful job */
  succeed(n = 1): void {
    this.emit({ type: 'queued', position: 0 });
    this.emit({ type: 'started' });
    this.emit({ type: 'progress', step: 10, totalSteps: 20, variation: 0 });
    this.emit({ type: 'preview', step: 10, totalSteps: 20, variation: 0, dataUrl: 'data:image/png;base64,AAAA' });
    this.emit({ type: 'progress', step: 20, totalSteps: 20, variation: 0 });
    this.emit({ type: 'succeeded', editIds: EDIT_IDS.slice(0, n), resultSha256s: EDIT_IDS.slice(0, n).map((_, i) => sha(100 + i)) });
  }
}

async function setup() {
  const figma = new FakeFigma();
  const main = new MainController(figma);
  main.start();
  const api = new FakeApi();
  const bridge = new Bridge(
    (message: UiToMain) => setTimeout(() => figma.fromUi(structuredClone(message)), 0),
    () => {},
    (reason) => {
      throw new Error(reason);
    },
  );
  figma.onPost = (message) => bridge.receive(message);
  const phases: EditPhase[] = [];
  let session = newSession('place-all');
  const dispatch = (action: SessionAction) => {
    session = reduceSession(session, action);
    phases.push(session.edit);
  };
  const resized: { width: number; height: number }[] = [];
  const resizePng = async (_png: Uint8Array, width: number, height: number) => {
    resized.push({ width, height });
    return fakePng(width, height);
  };
  const edit = new EditRun({ api, main: bridge, dispatch, resizePng });
  await main.handle({ type: 'ready', freshDocumentKey: KEY });
  await main.handle({ type: 'document-opened', documentId: DOC });
  return { figma, api, edit, bridge, phases, resized, last: () => session.edit, warning: () => session.warning };
}

const form: EditForm = { ...DEFAULT_FORM, instruction: ' make the circle blue ' };

function names(phases: EditPhase[]): string[] {
  return phases.map((p) => p.name).filter((n, i, all) => n !== all[i - 1]);
}

describe('one Apply', () => {
  it('a global edit: export, upload, queue, follow, download, place', async () => {
    const { figma, api, edit, phases, last } = await setup();
    const photo = figma.photo({ name: 'Photo', x: 10, y: 10, width: 200, height: 100 });
    figma.setSelection(photo);
    api.succeed();
    await edit.run(form, DOC, null);

    expect(names(phases)).toEqual(['preparing', 'uploading', 'queued', 'running', 'placing', 'done']);
    expect(api.created).toEqual([
      {
        documentId: DOC,
        parent: { kind: 'source', imageSha256: sha(1) },
        regions: [{ instruction: 'make the circle blue', maskSha256: null }],
        options: { steps: 20, strength: 1, variations: 1, locality: 'both', spread: 0 },
      },
    ]);
    const done = last();
    expect(done).toMatchObject({ name: 'done', seed: 7, editIds: [EDIT_IDS[0]] });
    expect(done).toMatchObject({ layers: 1 });
    const layer = figma.all().find((n) => n.pluginData.get('editId') === EDIT_IDS[0])!;
    expect(layer.name).toBe(' make the circle blue '.trim());
    expect(layer.pluginData.get('editId')).toBe(EDIT_IDS[0]);
    expect(figma.snapshot(layer).bounds).toEqual(figma.snapshot(photo).bounds);
  });

  it('words in "Where" go as maskText: no mask is uploaded, even with a mask shape selected', async () => {
    const { figma, api, edit } = await setup();
    const photo = figma.photo({ width: 200, height: 100 });
    figma.setSelection(photo, figma.ellipse({ x: 10, y: 10, width: 20, height: 20 }));
    api.succeed();
    await edit.run({ ...form, maskText: ' the circle ' }, DOC, null);
    expect(api.uploads.map((u) => pngSize(u))).toEqual([{ width: 200, height: 100 }]); // the layer only
    expect(api.created[0].regions).toEqual([{ instruction: 'make the circle blue', maskText: 'the circle' }]);
  });

  it('Preview: the layer goes up as the parent, masks.preview is asked for the words, the mask PNG comes back', async () => {
    const { figma, api, edit, phases } = await setup();
    figma.setSelection(figma.photo({ width: 200, height: 100 }));
    const preview = await edit.previewMask(' the circle ', DOC, null);
    expect(api.previews).toEqual([{ documentId: DOC, parent: { kind: 'source', imageSha256: sha(1) }, maskText: 'the circle' }]);
    expect(pngSize(preview.png)).toEqual({ width: 200, height: 100 });
    expect(preview.coverage).toBe(0.06);
    expect(api.created).toEqual([]); // nothing queued
    expect(phases).toEqual([]); // the edit's progress is untouched
  });

  it('a masked edit uploads the mask and names it in the region', async () => {
    const { figma, api, edit, resized } = await setup();
    const photo = figma.photo({ width: 200, height: 100 });
    figma.setSelection(photo, figma.ellipse({ x: 10, y: 10, width: 20, height: 20 }));
    api.succeed();
    await edit.run({ ...form, locality: 'blend', spread: 0.25, seed: 99, steps: 12, variations: 2, strength: 0.8 }, DOC, null);
    expect(api.uploads.map((u) => pngSize(u))).toEqual([
      { width: 200, height: 100 },
      { width: 200, height: 100 },
    ]);
    expect(resized).toEqual([]);
    expect(api.created[0]).toMatchObject({
      regions: [{ maskSha256: sha(2) }],
      options: { steps: 12, strength: 0.8, variations: 2, locality: 'blend', spread: 0.25, seed: 99 },
    });
  });

  it('a selected result layer continues from its edit and sends the hash of its current pixels', async () => {
    const { figma, api, edit } = await setup();
    const result = figma.photo({ width: 200, height: 100 });
    figma.tag(result, DOC, PREVIOUS_EDIT);
    figma.setSelection(result);
    api.succeed();
    await edit.run(form, DOC, null);
    expect(api.created[0].parent).toEqual({ kind: 'edit', editId: PREVIOUS_EDIT, pixelsSha256: sha(1) });
  });

  it('a pinned history edit with a mask: the mask is scaled to that edit’s image', async () => {
    const { figma, api, edit, resized } = await setup();
    const photo = figma.photo({ width: 200, height: 100 });
    figma.setSelection(photo, figma.ellipse({ x: 10, y: 10, width: 20, height: 20 }));
    api.blobSizes.set(sha(500), { width: 128, height: 64 });
    api.succeed();
    await edit.run(form, DOC, { editId: PREVIOUS_EDIT, resultImageSha256: sha(500) });
    expect(resized).toEqual([{ width: 128, height: 64 }]);
    expect(api.created[0].parent).toEqual({ kind: 'edit', editId: PREVIOUS_EDIT });
    expect(api.uploads.map((u) => pngSize(u))).toEqual([{ width: 128, height: 64 }]);
  });

  it('a job that fails on the server: failed, with its message, nothing placed', async () => {
    const { figma, api, edit, last } = await setup();
    figma.setSelection(figma.photo({ width: 200, height: 100 }));
    const before = figma.all().length;
    api.emit({ type: 'started' });
    api.emit({ type: 'failed', message: 'the model could not be loaded' });
    await edit.run(form, DOC, null);
    expect(last()).toEqual({ name: 'failed', message: 'The edit failed on the server: the model could not be loaded' });
    expect(figma.all()).toHaveLength(before);
  });

  it('cancel while uploading: nothing is queued', async () => {
    const { figma, api, edit, last } = await setup();
    figma.setSelection(figma.photo({ width: 200, height: 100 }));
    let release = () => {};
    api.uploadGate = new Promise<void>((r) => (release = r));
    const running = edit.run(form, DOC, null);
    while (last().name !== 'uploading') await new Promise((r) => setTimeout(r, 1));
    edit.cancel();
    release();
    await running;
    expect(last()).toEqual({ name: 'cancelled', message: 'Cancelled. Nothing was sent to the server.' });
    expect(api.created).toEqual([]);
  });

  it('cancel while running: the server is asked to cancel, nothing is placed', async () => {
    const { figma, api, edit, phases, last } = await setup();
    figma.setSelection(figma.photo({ width: 200, height: 100 }));
    const before = figma.all().length;
    api.emit({ type: 'started' });
    api.emit({ type: 'progress', step: 2, totalSteps: 20, variation: 0 });
    const running = edit.run(form, DOC, null);
    while (!(last().name === 'running' && 'step' in last() && (last() as { step: number }).step === 2)) await new Promise((r) => setTimeout(r, 1));
    edit.cancel();
    await running;
    expect(api.cancelled).toEqual([JOB]);
    expect(phases.some((p) => p.name === 'running' && p.cancelRequested)).toBe(true);
    expect(last()).toEqual({ name: 'cancelled', message: 'Cancelled. Nothing was added to the document.' });
    expect(figma.all()).toHaveLength(before);
  });

  it('server and selection problems end in failed with a message that says what to do', async () => {
    const { edit, last } = await setup();
    await edit.run(form, DOC, null);
    expect(last()).toEqual({ name: 'failed', message: 'Select a layer to edit. To change only part of it, also select a shape drawn over that part.' });

    const again = await setup();
    again.figma.setSelection(again.figma.photo({ width: 200, height: 100 }));
    again.api.createFails = errorForStatus(again.api.serverUrl, null, null, 'Failed to fetch', 'allow the server in manifest.json');
    await again.edit.run(form, DOC, null);
    expect(again.last()).toEqual({
      name: 'failed',
      message: "Can't reach the layerloop server at http://fake:7860: Failed to fetch. Check that it is running and the URL in Settings; allow the server in manifest.json.",
    });
  });

  it('a result layer whose edit the server no longer knows: the edit starts from its pixels, with a warning', async () => {
    const { figma, api, edit, last, warning } = await setup();
    const result = figma.photo({ width: 200, height: 100 });
    figma.tag(result, DOC, PREVIOUS_EDIT);
    figma.setSelection(result);
    const create = api.createEdit.bind(api);
    api.createEdit = async (request) => {
      if (request.parent.kind === 'edit') throw new ClientError('not-found', `no edit ${PREVIOUS_EDIT}`, 404, 'NOT_FOUND');
      return create(request);
    };
    api.succeed();
    await edit.run(form, DOC, null);
    expect(api.created.map((r) => r.parent)).toEqual([{ kind: 'source', imageSha256: sha(1) }]);
    expect(last()).toMatchObject({ name: 'done' });
    expect(warning()).toMatch(/does not know the edit this layer came from/);
  });
});

describe('the form', () => {
  it('needs an instruction and in-range options', () => {
    expect(formProblem(DEFAULT_FORM)).toBe(NO_INSTRUCTION);
    expect(formProblem(form)).toBeNull();
    expect(formProblem({ ...form, steps: 0 })).toBe('steps must be an integer between 1 and 100, got 0');
    expect(formProblem({ ...form, variations: 9 })).toBe('variations must be an integer between 1 and 8, got 9');
    expect(() => buildEditRequest(form, 'not-a-uuid', { kind: 'source', imageSha256: sha(1) }, null)).toThrow(/documentId must be a UUID/);
  });
});

describe('a reference image', () => {
  it('the selected layer is exported as the reference, then uploaded and named in edits.create', async () => {
    const { figma, api, edit, bridge, last } = await setup();
    const style = figma.photo({ name: 'Style', x: 400, y: 0, width: 64, height: 48 });
    const photo = figma.photo({ name: 'Photo', x: 10, y: 10, width: 200, height: 100 });
    figma.setSelection(style);
    const reference = await bridge.captureReference();
    expect(reference).toMatchObject({ nodeId: style.id, name: 'Style', image: { width: 64, height: 48 } });
    expect(decodeFakePng(reference.image.png).scene.name).toBe('Style');

    figma.setSelection(photo);
    api.succeed();
    await edit.run(form, DOC, null, reference.image);
    expect(last().name).toBe('done');
    // the layer first, then the reference
    expect(api.uploads.map((png) => decodeFakePng(png).scene.name)).toEqual(['Photo', 'Style']);
    expect(api.created[0]).toMatchObject({ parent: { kind: 'source', imageSha256: sha(1) }, references: [sha(2)] });
  });

  it('an edit without a reference sends no references field', async () => {
    const { figma, api, edit } = await setup();
    figma.setSelection(figma.photo({ name: 'Photo', width: 20, height: 10 }));
    api.succeed();
    await edit.run(form, DOC, null, null);
    expect(api.created[0]).not.toHaveProperty('references');
  });

  it('says what to select when none, several, or a hidden layer is selected', async () => {
    const { figma, bridge } = await setup();
    await expect(bridge.captureReference()).rejects.toThrow('Select the layer to use as the reference image, then press "Use selection as reference".');
    const a = figma.photo({ name: 'A', width: 20, height: 10 });
    const b = figma.photo({ name: 'B', width: 20, height: 10 });
    figma.setSelection(a, b);
    await expect(bridge.captureReference()).rejects.toThrow('2 layers are selected: select only the layer to use as the reference image.');
    const hidden = figma.photo({ name: 'Ghost', width: 20, height: 10, visible: false });
    figma.setSelection(hidden);
    await expect(bridge.captureReference()).rejects.toThrow('"Ghost" is hidden.');
  });
});
