import type { JobSnapshot } from '../../../shared/protocol';
import { errorForStatus, snapshotToEvents } from '../../../plugin-figma/src/api';
import { Bridge, MainRequestError } from '../../../plugin-figma/src/bridge';
import type { UiToMain } from '../../../plugin-figma/src/messages';
import { jobSnapshot } from '../../support/job-snapshot';

const URL_ = 'http://localhost:7860';

const snap = (over: Partial<JobSnapshot>): JobSnapshot => jobSnapshot({ jobId: 'j', documentId: 'd', position: 2, ...over });

describe('following a job by polling', () => {
  it('turns successive snapshots into the events SSE would have sent', () => {
    const s1 = snap({});
    const s2 = snap({ position: 0, lastSeq: 2 });
    const s3 = snap({ state: 'running', position: null, startedAt: 5, progress: { step: 4, totalSteps: 20, variation: 0 }, lastSeq: 6 });
    const s4 = { ...s3, progress: { step: 8, totalSteps: 20, variation: 0 }, previewStep: 5, previewDataUrl: 'data:image/png;base64,AA', lastSeq: 9 };
    const s5 = { ...s4, state: 'succeeded' as const, previewDataUrl: null, result: { editIds: ['e'], resultSha256s: ['a'.repeat(64)] }, lastSeq: 12 };
    expect(snapshotToEvents(null, s1).map((e) => e.type)).toEqual(['queued']);
    expect(snapshotToEvents(s1, s1)).toEqual([]);
    expect(snapshotToEvents(s1, s2)).toEqual([{ type: 'queued', jobId: 'j', seq: 2, position: 0 }]);
    expect(snapshotToEvents(s2, s3).map((e) => e.type)).toEqual(['started', 'progress']);
    expect(snapshotToEvents(s3, s4)).toEqual([
      { type: 'progress', jobId: 'j', seq: 9, step: 8, totalSteps: 20, variation: 0 },
      { type: 'preview', jobId: 'j', seq: 9, step: 5, totalSteps: 20, variation: 0, dataUrl: 'data:image/png;base64,AA' },
    ]);
    expect(snapshotToEvents(s4, s5)).toEqual([{ type: 'succeeded', jobId: 'j', seq: 12, editIds: ['e'], resultSha256s: ['a'.repeat(64)] }]);
    expect(snapshotToEvents(s4, { ...s4, state: 'failed', error: 'boom' }).at(-1)).toMatchObject({ type: 'failed', message: 'boom' });
    expect(snapshotToEvents(s2, snap({ state: 'cancelled', position: null })).map((e) => e.type)).toEqual(['cancelled']);
  });
});

describe('errors that say what to do', () => {
  it('one message per kind of failure', () => {
    expect(errorForStatus(URL_, null, null)).toMatchObject({
      kind: 'network',
      message: "Can't reach the layerloop server at http://localhost:7860. Start it (npm start), check the URL in Settings, and that manifest.json's networkAccess allows it.",
    });
    expect(errorForStatus(URL_, 401, 'x').message).toBe(
      'The server at http://localhost:7860 did not accept the token (or needs one). Paste the token it was started with (--token / LAYERLOOP_TOKEN) into Settings.',
    );
    expect(errorForStatus(URL_, 429, 'queue full').message).toBe("The server's queue is full: queue full. Wait for running edits to finish, then Apply again.");
    expect(errorForStatus(URL_, 400, 'regions[0].maskSha256: the mask is 10x10 but the image is 20x20').message).toBe(
      'regions[0].maskSha256: the mask is 10x10 but the image is 20x20',
    );
    expect(errorForStatus(URL_, 404, null).message).toBe('http://localhost:7860 answered 404: is it a layerloop server? Check the URL in Settings.');
    expect(errorForStatus(URL_, 500, 'disk full')).toMatchObject({ kind: 'server', message: 'The server failed (500): disk full. Its log says more; try again.' });
  });
});

describe('the UI bridge', () => {
  it('pairs replies with requests, rejects failed ones, and drops what does not parse', async () => {
    const sent: UiToMain[] = [];
    const other: unknown[] = [];
    const invalid: string[] = [];
    const bridge = new Bridge((m) => sent.push(m), (m) => other.push(m), (r) => invalid.push(r));
    const placing = bridge.placeResults({ target: { kind: 'selection-or-viewport' }, instruction: 'x', documentId: 'd', editIds: ['e'], png: async () => new Uint8Array([1]) });
    await Promise.resolve(); // the PNG is asked for first
    const preparing = bridge.prepareEdit(null);
    expect(sent.map((m) => m.type)).toEqual(['place-result', 'prepare-edit']);
    const [placeId, prepareId] = sent.map((m) => ('requestId' in m ? m.requestId : ''));
    bridge.receive({ type: 'request-failed', requestId: prepareId, message: 'Select a layer to edit.' });
    bridge.receive({ type: 'placed', requestId: placeId, nodeIds: ['1:5'] });
    await expect(preparing).rejects.toEqual(new MainRequestError('Select a layer to edit.'));
    await expect(placing).resolves.toEqual(['1:5']);

    bridge.receive({ type: 'placed', requestId: 'r999', nodeIds: ['1:5'] });
    bridge.receive({ type: 'selection', selection: { ready: 'yes' } });
    bridge.receive({ type: 'error', message: 'hi' });
    expect(invalid).toEqual([
      'ignored a reply to an unknown request r999',
      'ignored a malformed main-thread message (selection): selection.ready: Invalid input: expected boolean, received string',
    ]);
    expect(other).toEqual([{ type: 'error', message: 'hi' }]);
  });

  it('places variations one message each, asking for each PNG only at its turn; a failed download abandons the placement', async () => {
    const sent: UiToMain[] = [];
    const bridge = new Bridge((m) => {
      sent.push(m);
      if (m.type === 'place-result') setTimeout(() => bridge.receive({ type: 'placed', requestId: m.requestId, nodeIds: [`1:${m.index}`] }), 0);
    }, () => {});
    const asked: number[] = [];
    const png = async (i: number) => {
      asked.push(i);
      expect(sent.filter((m) => m.type === 'place-result')).toHaveLength(i); // the previous one is placed already
      if (i === 2) throw new Error('download failed');
      return new Uint8Array([i]);
    };
    await expect(bridge.placeResults({ target: { kind: 'node', nodeId: '1:2' }, instruction: 'x', documentId: 'd', editIds: ['a', 'b', 'c'], png })).rejects.toThrow('download failed');
    expect(asked).toEqual([0, 1, 2]);
    expect(sent.map((m) => (m.type === 'place-result' ? `${m.type} ${m.index}/${m.count} ${m.editId}` : m.type))).toEqual(['place-result 0/3 a', 'place-result 1/3 b', 'place-abandon']);
  });
});
