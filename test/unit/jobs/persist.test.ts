import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobStateRecorder } from '../../../server/jobs/persist';
import { createLogger } from '../../../server/log';
import { openStore, type EmbeddedStore } from '../../../server/store';

let root: string;
let store: EmbeddedStore;
let logs: string[];
let recorder: JobStateRecorder;
let documentId: string;

beforeEach(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'layerloop-persist-'));
  store = await openStore(root);
  logs = [];
  recorder = new JobStateRecorder(store.edits, createLogger({ write: (line) => logs.push(line) }));
  documentId = (await store.edits.openDocument('web', 'doc')).documentId;
});
afterEach(async () => {
  await store.close();
  rmSync(root, { recursive: true, force: true });
});

const at = () => ({ documentId, at: Date.now() });

describe('JobStateRecorder', () => {
  test('mirrors queue states into the store, in order, skipping states it already has', async () => {
    const { id } = await store.edits.createJob({ documentId, request: {} });
    // fired without awaiting, as the queue does
    void recorder.onStateChange(id, 'queued', at());
    void recorder.onStateChange(id, 'running', at());
    void recorder.onStateChange(id, 'failed', { ...at(), error: 'the model ran out of memory' });
    await recorder.idle();
    expect(await store.edits.getJob(id)).toMatchObject({ state: 'failed', error: 'the model ran out of memory' });
    expect(logs).toEqual([]);
  });

  test('settled() waits for the running write; an already-succeeded job stays succeeded', async () => {
    const { id } = await store.edits.createJob({ documentId, request: {} });
    void recorder.onStateChange(id, 'running', at());
    await recorder.settled(id);
    expect((await store.edits.getJob(id))?.state).toBe('running');
    await store.edits.updateJobState(id, 'succeeded'); // as addEditNodes(markSucceeded) does
    await recorder.onStateChange(id, 'succeeded', at());
    expect((await store.edits.getJob(id))?.state).toBe('succeeded');
    expect(logs).toEqual([]);
    // a cancel that lost the race with the commit: the store keeps 'succeeded' and says so in the log
    await recorder.onStateChange(id, 'cancelled', at());
    expect((await store.edits.getJob(id))?.state).toBe('succeeded');
    expect(logs.join('')).toMatch(/keeping it/);
  });

  test("a job's first state with its request creates its row, before the states that follow", async () => {
    const id = '5a1d0c3e-7f2b-4c8d-9e0f-1a2b3c4d5e6f';
    const request = { documentId, regions: [{ instruction: 'make it blue', maskSha256: null }], options: { seed: 7 } };
    const recorded = recorder.onStateChange(id, 'queued', { ...at(), request: request as never });
    void recorder.onStateChange(id, 'running', at());
    expect(await store.edits.getJob(id)).toBeNull(); // a macrotask later, not now: the runner goes first
    await recorded;
    expect(await store.edits.getJob(id)).toMatchObject({ id, documentId, state: 'queued', request });
    await recorder.settled(id);
    expect((await store.edits.getJob(id))?.state).toBe('running');
    expect(logs).toEqual([]);
  });

  test('a new job that cannot be recorded rejects (its id must not be handed out); its later states are skipped quietly', async () => {
    const id = '5a1d0c3e-7f2b-4c8d-9e0f-1a2b3c4d5e70';
    const unknownDocument = '00000000-0000-4000-8000-000000000001';
    const recorded = recorder.onStateChange(id, 'queued', { documentId: unknownDocument, at: Date.now(), request: { documentId: unknownDocument } as never });
    void recorder.onStateChange(id, 'running', { documentId: unknownDocument, at: Date.now() }); // the runner started meanwhile
    await expect(recorded).rejects.toThrow(/no document/);
    await recorder.settled(id);
    expect(logs).toEqual([]); // the caller reports it (edits.create answers an error and withdraws the job)
    await recorder.onStateChange(id, 'cancelled', { documentId: unknownDocument, at: Date.now(), withdrawn: true });
    await recorder.idle();
    expect(logs).toEqual([]);
    expect(await store.edits.getJob(id)).toBeNull();
  });

  test('never rejects: an unknown job is logged', async () => {
    await expect(recorder.onStateChange('00000000-0000-4000-8000-000000000000', 'running', at())).resolves.toBeUndefined();
    expect(logs.join('')).toMatch(/does not know/);
  });
});
