import { ApiError } from '../../../plugin-uxp/src/api';
import { nextView, watchJob, type JobView } from '../../../plugin-uxp/src/job';
import { FakeApi, PREVIEW, snapshot } from './fake-api';

const JOB = '5d1c8f3e-2b4a-4c6d-8e9f-0a1b2c3d4e5f';
const DOC = '6e2d9f4a-3c5b-4d7e-9fa0-1b2c3d4e5f60';
const RESULT = { editIds: ['e1'], resultSha256s: ['a'.repeat(64)] };
const snap = (patch: Parameters<typeof snapshot>[2]) => snapshot(JOB, DOC, patch);

describe('nextView', () => {
  it('walks queued -> running (progress, previews) -> succeeded', () => {
    let v: JobView = nextView(null, snap({ state: 'queued', position: 2 }));
    expect(v).toEqual({ phase: 'queued', jobId: JOB, position: 2, cancelRequested: false });
    v = nextView(v, snap({ state: 'running', progress: { step: 3, totalSteps: 20, variation: 0 } }));
    expect(v).toMatchObject({ phase: 'running', step: 3, totalSteps: 20, preview: null });
    v = nextView(v, snap({ state: 'running', progress: { step: 5, totalSteps: 20, variation: 0 }, previewStep: 5, previewDataUrl: PREVIEW(5) }));
    expect(v).toMatchObject({ phase: 'running', step: 5, preview: PREVIEW(5), previewStep: 5 });
    // a poll with previewAfterStep=5 gets no preview: the last one stays
    v = nextView(v, snap({ state: 'running', progress: { step: 7, totalSteps: 20, variation: 0 }, previewStep: 5, previewDataUrl: null }));
    expect(v).toMatchObject({ phase: 'running', step: 7, preview: PREVIEW(5), previewStep: 5 });
    v = nextView(v, snap({ state: 'succeeded', result: RESULT }));
    expect(v).toEqual({ phase: 'succeeded', jobId: JOB, result: RESULT, preview: PREVIEW(5) });
  });

  it('turns failures, cancellation and a success without results into terminal views', () => {
    expect(nextView(null, snap({ state: 'failed', error: 'out of memory' }))).toEqual({ phase: 'failed', jobId: JOB, message: 'out of memory' });
    expect(nextView(null, snap({ state: 'failed' }))).toMatchObject({ phase: 'failed', message: /no reason given/ });
    expect(nextView(null, snap({ state: 'cancelled' }))).toEqual({ phase: 'cancelled', jobId: JOB });
    expect(nextView(null, snap({ state: 'succeeded', result: { editIds: [], resultSha256s: [] } }))).toMatchObject({ phase: 'failed' });
    expect(nextView(null, snap({ state: 'queued', position: 0, cancelRequested: true }))).toMatchObject({ cancelRequested: true });
  });
});

/** a FakeApi with one job that serves `script` */
function apiWith(script: ReturnType<typeof snap>[]) {
  const api = new FakeApi();
  api.jobs.push({ id: JOB, request: { documentId: DOC, parent: { kind: 'source', imageSha256: 'a'.repeat(64) }, regions: [{ instruction: 'x', maskSha256: null }] }, script, polls: [], cancelled: false });
  return api;
}

const noSleep = { intervalMs: 500, sleep: async () => undefined };

describe('watchJob', () => {
  it('polls until the job finishes, reporting each view and asking only for newer previews', async () => {
    const api = apiWith([
      snap({ state: 'queued', position: 1 }),
      snap({ state: 'running', progress: { step: 5, totalSteps: 10, variation: 0 }, previewStep: 5, previewDataUrl: PREVIEW(5) }),
      snap({ state: 'running', progress: { step: 6, totalSteps: 10, variation: 0 }, previewStep: 5, previewDataUrl: PREVIEW(5) }),
      snap({ state: 'succeeded', result: RESULT, previewStep: 5, previewDataUrl: PREVIEW(5) }),
    ]);
    const views: JobView[] = [];
    const sleeps: number[] = [];
    const w = watchJob(api, JOB, { intervalMs: 500, sleep: async (ms) => void sleeps.push(ms), onView: (v) => views.push(v) });
    const final = await w.done;
    expect(final).toEqual({ phase: 'succeeded', jobId: JOB, result: RESULT, preview: PREVIEW(5) });
    expect(views.map((v) => v.phase)).toEqual(['queued', 'running', 'running', 'succeeded']);
    expect(views[2]).toMatchObject({ step: 6, preview: PREVIEW(5) });
    expect(api.jobs[0].polls.map((p) => p.previewAfterStep)).toEqual([undefined, undefined, 5, 5]);
    expect(sleeps).toEqual([500, 500, 500]);
  });

  it('reports a failed job with the server\'s message', async () => {
    const api = apiWith([snap({ state: 'running' }), snap({ state: 'failed', error: 'the model crashed' })]);
    expect(await watchJob(api, JOB, { ...noSleep, onView: () => undefined }).done).toEqual({ phase: 'failed', jobId: JOB, message: 'the model crashed' });
  });

  it('cancels: calls jobs.cancel once and goes on polling until the job says cancelled', async () => {
    const api = apiWith([snap({ state: 'running', progress: { step: 1, totalSteps: 10, variation: 0 } })]);
    const cancelSpy = jest.spyOn(api, 'cancelJob');
    let w: ReturnType<typeof watchJob> | null = null;
    const views: JobView[] = [];
    w = watchJob(api, JOB, {
      ...noSleep,
      onView: (v) => {
        views.push(v);
        if (views.length === 3) void w!.cancel();
      },
    });
    await w.cancel(); // twice: one server call
    expect(await w.done).toEqual({ phase: 'cancelled', jobId: JOB });
    expect(cancelSpy).toHaveBeenCalledTimes(1);
    expect(w.cancelRequested).toBe(true);
  });

  it('rides out a few failed polls, backing off', async () => {
    const api = apiWith([snap({ state: 'succeeded', result: RESULT })]);
    api.getJobFailures = 2;
    const sleeps: number[] = [];
    const final = await watchJob(api, JOB, { intervalMs: 100, sleep: async (ms) => void sleeps.push(ms), onView: () => undefined }).done;
    expect(final.phase).toBe('succeeded');
    expect(sleeps).toEqual([200, 400]);
  });

  it('gives up after too many failed polls, saying where the result will be', async () => {
    const api = apiWith([snap({ state: 'running' })]);
    api.getJobFailures = 10;
    const final = await watchJob(api, JOB, { ...noSleep, onView: () => undefined, maxFailures: 3 }).done;
    expect(final).toMatchObject({ phase: 'failed', message: expect.stringMatching(/Lost contact with the server.*history list/) });
  });

  it('stops at once when the server no longer knows the job', async () => {
    const api = apiWith([]);
    api.getJob = async () => {
      throw new ApiError('job not found', 'NOT_FOUND', 404);
    };
    const final = await watchJob(api, JOB, { ...noSleep, onView: () => undefined }).done;
    expect(final).toMatchObject({ phase: 'failed', message: expect.stringMatching(/no longer knows this edit/) });
  });
});
