/**
 * JobLedger, the one writer of job state to the store, on the embedded store: every write is idempotent, so a
 * job run again after its worker died is recorded once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { JobLedger } from '../../../server/jobs/ledger';
import { openStore, type EmbeddedStore, type EditNodeInput } from '../../../server/store';
import { bytesOf, putLatent } from '../store/contract';
import { planFor } from './contract';

let dir: string;
let store: EmbeddedStore;
let ledger: JobLedger;
beforeEach(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'layerloop-ledger-'));
  store = await openStore(dir);
  ledger = new JobLedger(store.edits);
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function recordedJob(jobId: string) {
  const { documentId } = await store.edits.openDocument('figma', 'file:1');
  const image = (await store.blobs.put(bytesOf(1))).sha256;
  await ledger.create(jobId, planFor(documentId, 'make it blue', image));
  const source = await store.edits.addSourceNode({ documentId, imageSha256: image });
  const node: EditNodeInput = {
    parentId: source.id,
    instruction: 'make it blue',
    regions: [{ instruction: 'make it blue', maskSha256: null }],
    options: { seed: 7 },
    seed: 7,
    variation: 0,
    sourceImageSha256: image,
    resultImageSha256: (await store.blobs.put(bytesOf(2))).sha256,
    latent: await putLatent(store.blobs, 1),
    conditioning: 'pixels',
  };
  return { documentId, node };
}

test('create records the request; start marks it running, and again is a no-op (a re-run)', async () => {
  const jobId = 'a1b2c3d4-0000-4000-8000-000000000001';
  const { documentId } = await recordedJob(jobId);
  expect(await store.edits.getJob(jobId)).toMatchObject({ state: 'queued', documentId, request: { documentId, options: { seed: 7 } } });
  expect(await ledger.start(jobId)).toBeNull();
  expect(await ledger.start(jobId)).toBeNull();
  expect((await store.edits.getJob(jobId))?.state).toBe('running');
});

test('commit stores the edits once: a second commit of the same job returns the first one\'s edits', async () => {
  const jobId = 'a1b2c3d4-0000-4000-8000-000000000002';
  const { documentId, node } = await recordedJob(jobId);
  await ledger.start(jobId);
  const first = await ledger.commit(jobId, [node]);
  expect(first).toEqual({ editIds: [expect.any(String)], resultSha256s: [node.resultImageSha256] });
  const again = await ledger.commit(jobId, [node]);
  expect(again).toEqual(first);
  expect((await store.edits.history(documentId))?.nodes.filter((n) => n.kind === 'edit')).toHaveLength(1);
  // a worker that starts the job after the commit learns it is done
  expect(await ledger.start(jobId)).toEqual({ state: 'succeeded', result: first });
});

test('end records failed or cancelled; a final state already stored stands and is returned', async () => {
  const failing = 'a1b2c3d4-0000-4000-8000-000000000003';
  const { node } = await recordedJob(failing);
  await ledger.start(failing);
  expect(await ledger.end(failing, { state: 'failed', error: 'the mask blob is missing' })).toEqual({ state: 'failed', error: 'the mask blob is missing' });
  expect(await ledger.end(failing, { state: 'cancelled' })).toEqual({ state: 'failed', error: 'the mask blob is missing' });

  const committed = 'a1b2c3d4-0000-4000-8000-000000000004';
  await ledger.create(committed, planFor((await store.edits.getJob(failing))!.documentId, 'x', node.sourceImageSha256));
  await ledger.start(committed);
  const result = await ledger.commit(committed, [node]);
  // a cancel that lost the race with the commit: the commit stands
  expect(await ledger.end(committed, { state: 'cancelled' })).toEqual({ state: 'succeeded', result });
  expect(await ledger.start(committed)).toEqual({ state: 'succeeded', result });
});
