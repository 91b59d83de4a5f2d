import type { JobEvent } from '../../../shared/protocol';
import {
  CANCELLED_BEFORE_SENT,
  CANCELLED_ON_SERVER,
  FINISHED_DESPITE_CANCEL,
  IDLE,
  INITIAL_STATE,
  isActive,
  phaseText,
  progressFraction,
  reduce,
  reduceEdit,
  type EditAction,
  type EditPhase,
} from '../../../plugin-figma/src/ui-state';

const JOB = 'job-1';
const PNG_URL = 'data:image/png;base64,iVBORw0KGgo=';

function run(actions: EditAction[], from: EditPhase = IDLE): EditPhase[] {
  const phases: EditPhase[] = [];
  let phase = from;
  for (const action of actions) {
    phase = reduceEdit(phase, action);
    phases.push(phase);
  }
  return phases;
}

/** a job event of JOB (jobId and seq filled in unless given) */
type Bare<E> = E extends JobEvent ? Omit<E, 'jobId' | 'seq'> : never;
type BareEvent = Bare<JobEvent>;
const ev = (e: BareEvent & { jobId?: string; seq?: number }): EditAction => ({ type: 'job-event', event: { jobId: JOB, seq: 1, ...e } as JobEvent });

const untilQueued: EditAction[] = [{ type: 'start' }, { type: 'exported' }, { type: 'job-created', jobId: JOB, seed: 42, position: 2 }];

describe('the edit state machine', () => {
  it('idle -> exporting -> uploading -> queued -> running (progress, previews) -> placing -> done', () => {
    const phases = run([
      ...untilQueued,
      ev({ type: 'queued', position: 0 }),
      ev({ type: 'started' }),
      ev({ type: 'progress', step: 5, totalSteps: 20, variation: 0 }),
      ev({ type: 'preview', step: 5, totalSteps: 20, variation: 0, dataUrl: PNG_URL }),
      ev({ type: 'preview', step: 5, totalSteps: 20, variation: 1, dataUrl: `${PNG_URL}B` }),
      ev({ type: 'preview', step: 10, totalSteps: 20, variation: 0, dataUrl: `${PNG_URL}C` }),
      ev({ type: 'progress', step: 20, totalSteps: 20, variation: 1 }),
      ev({ type: 'succeeded', editIds: ['e1', 'e2'], resultSha256s: ['a'.repeat(64), 'b'.repeat(64)] }),
      { type: 'placed', nodeIds: ['1:10', '1:11'] },
    ]);
    expect(phases.map((p) => p.name)).toEqual([
      'exporting',
      'uploading',
      'queued',
      'queued',
      'running',
      'running',
      'running',
      'running',
      'running',
      'running',
      'placing',
      'done',
    ]);
    expect(phases[2]).toEqual({ name: 'queued', jobId: JOB, seed: 42, position: 2, cancelRequested: false });
    expect(phases[3]).toMatchObject({ position: 0 });
    expect(phases[5]).toMatchObject({ step: 5, totalSteps: 20 });
    // the latest preview of each variation, in variation order
    expect(phases[8]).toMatchObject({
      previews: [
        { variation: 0, step: 10, dataUrl: `${PNG_URL}C` },
        { variation: 1, step: 5, dataUrl: `${PNG_URL}B` },
      ],
    });
    expect(phases[11]).toEqual({ name: 'done', jobId: JOB, seed: 42, editIds: ['e1', 'e2'], nodeIds: ['1:10', '1:11'] });
    expect(phaseText(phases[11])).toBe('Done: 2 new layers (only the first is visible) above the source. Seed 42.');
    expect(phases.map(progressFraction)).toEqual([null, null, 0, 0, 0, 0.25, 0.25, 0.25, 0.25, 1, 1, 1]);
  });

  it('ignores events of another job and events after the end', () => {
    const [, , queued] = run(untilQueued);
    expect(reduceEdit(queued, ev({ type: 'started', jobId: 'other' }))).toBe(queued);
    const failed = reduceEdit(queued, ev({ type: 'failed', message: 'out of memory' }));
    expect(failed).toEqual({ name: 'failed', message: 'The edit failed on the server: out of memory' });
    expect(reduceEdit(failed, ev({ type: 'progress', step: 1, totalSteps: 2, variation: 0 }))).toBe(failed);
    expect(reduceEdit(failed, { type: 'placed', nodeIds: ['x'] })).toBe(failed);
  });

  it('refuses out-of-order steps', () => {
    expect(reduceEdit(IDLE, { type: 'exported' })).toBe(IDLE);
    expect(reduceEdit(IDLE, { type: 'job-created', jobId: JOB, seed: 1, position: 0 })).toBe(IDLE);
    const [exporting] = run([{ type: 'start' }]);
    expect(reduceEdit(exporting, { type: 'start' })).toBe(exporting); // Apply while active: nothing
    expect(reduceEdit(exporting, { type: 'dismiss' })).toBe(exporting);
  });

  it('cancel before the job exists: cancelled at once', () => {
    expect(run([{ type: 'start' }, { type: 'cancel-requested' }]).at(-1)).toEqual({ name: 'cancelled', message: CANCELLED_BEFORE_SENT });
    expect(run([{ type: 'start' }, { type: 'exported' }, { type: 'cancel-requested' }]).at(-1)).toEqual({ name: 'cancelled', message: CANCELLED_BEFORE_SENT });
  });

  it('cancel a running job: "Cancelling…" until the server says cancelled', () => {
    const phases = run([...untilQueued, ev({ type: 'started' }), { type: 'cancel-requested' }, ev({ type: 'progress', step: 3, totalSteps: 20, variation: 0 }), ev({ type: 'cancelled' })]);
    expect(phases[4]).toMatchObject({ name: 'running', cancelRequested: true });
    expect(phaseText(phases[4])).toBe('Cancelling…');
    expect(phases[5]).toMatchObject({ name: 'running', cancelRequested: true, step: 3 });
    expect(phases[6]).toEqual({ name: 'cancelled', message: CANCELLED_ON_SERVER });
  });

  it('cancel requested but the job finished first: cancelled, nothing placed', () => {
    const phases = run([...untilQueued, { type: 'cancel-requested' }, ev({ type: 'succeeded', editIds: ['e1'], resultSha256s: ['a'.repeat(64)] })]);
    expect(phases.at(-1)).toEqual({ name: 'cancelled', message: FINISHED_DESPITE_CANCEL });
  });

  it('a local failure ends any active phase; dismiss returns to idle', () => {
    for (const prefix of [[{ type: 'start' }], untilQueued, [...untilQueued, ev({ type: 'succeeded', editIds: ['e'], resultSha256s: ['a'.repeat(64)] })]] as EditAction[][]) {
      const end = run([...prefix, { type: 'fail', message: "Can't reach the server" }]).at(-1)!;
      expect(end).toEqual({ name: 'failed', message: "Can't reach the server" });
      expect(isActive(end)).toBe(false);
      expect(reduceEdit(end, { type: 'dismiss' })).toEqual(IDLE);
      expect(reduceEdit(end, { type: 'start' })).toEqual({ name: 'exporting' });
    }
  });

  it('explains the queue and steps', () => {
    expect(phaseText({ name: 'queued', jobId: JOB, seed: 1, position: 0, cancelRequested: false })).toBe('Queued: starts next.');
    expect(phaseText({ name: 'queued', jobId: JOB, seed: 1, position: 3, cancelRequested: false })).toBe('Queued: 3 edits ahead.');
    expect(phaseText({ name: 'running', jobId: JOB, seed: 1, step: 4, totalSteps: 20, previews: [], cancelRequested: false })).toBe('Step 4 of 20');
  });
});

describe('the panel state', () => {
  it('changing the server forgets the connection, history and pinned edit', () => {
    let s = reduce(INITIAL_STATE, { type: 'connection', connection: { status: 'connected', model: 'm', documentId: 'd' } });
    s = reduce(s, {
      type: 'history-loaded',
      entries: [
        { id: 's', parentId: null, kind: 'source', instruction: null, resultImageSha256: 'a', seed: null, variation: null, createdAt: '2026-01-01' },
        { id: 'e1', parentId: 's', kind: 'edit', instruction: 'one', resultImageSha256: 'b', seed: 1, variation: 0, createdAt: '2026-01-02' },
        { id: 'e2', parentId: 'e1', kind: 'edit', instruction: 'two', resultImageSha256: 'c', seed: 2, variation: 0, createdAt: '2026-01-03' },
      ],
    });
    expect(s.history.entries.map((e) => e.id)).toEqual(['e2', 'e1']); // edits, newest first
    s = reduce(s, { type: 'continue-from', entry: { editId: 'e1', instruction: 'one', resultImageSha256: 'b' } });
    s = reduce(s, { type: 'settings', settings: { serverUrl: 'http://other:7860', token: '' } });
    expect(s.connection).toEqual({ status: 'unknown' });
    expect(s.history.entries).toEqual([]);
    expect(s.continueFrom).toBeNull();
  });
});
