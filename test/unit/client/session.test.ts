/**
 * The shared EditSession reducer (shared/client/session.ts): the edit's phases from Apply to placed, cancelled
 * or failed, variations to pick from, the history and "continue from".
 */
import {
  CANCELLED_BEFORE_SENT,
  CANCELLED_ON_SERVER,
  FINISHED_DESPITE_CANCEL,
  IDLE,
  canCancel,
  isActive,
  newSession,
  phaseText as sharedPhaseText,
  progressFraction,
  reduceSession,
  type EditPhase,
  type SessionAction,
  type VariationPolicy,
} from '../../../shared/client';
import type { JobEvent } from '../../../shared/protocol';

type EditAction = SessionAction;

/** one step of the edit phase, as the session reducer takes it */
function reduceEdit(phase: EditPhase, action: EditAction, policy: VariationPolicy = 'place-all'): EditPhase {
  return reduceSession({ ...newSession(policy), edit: phase }, action).edit;
}

const phaseText = (phase: EditPhase) =>
  sharedPhaseText(phase, { preparing: 'Reading the layer…', placing: 'Placing…', done: (d) => `Done: ${d.layers} layer(s). Seed ${d.seed}.` });

const JOB = 'job-1';
const PNG_URL = 'data:image/png;base64,iVBORw0KGgo=';

function run(actions: EditAction[], from: EditPhase = IDLE, policy: VariationPolicy = 'place-all'): EditPhase[] {
  const phases: EditPhase[] = [];
  let phase = from;
  for (const action of actions) {
    phase = reduceEdit(phase, action, policy);
    phases.push(phase);
  }
  return phases;
}

/** a job event of JOB (jobId and seq filled in unless given) */
type Bare<E> = E extends JobEvent ? Omit<E, 'jobId' | 'seq'> : never;
type BareEvent = Bare<JobEvent>;
const ev = (e: BareEvent & { jobId?: string; seq?: number }): EditAction => ({ type: 'job-event', event: { jobId: JOB, seq: 1, ...e } as JobEvent });

const untilQueued: EditAction[] = [{ type: 'start' }, { type: 'prepared' }, { type: 'job-created', jobId: JOB, seed: 42, position: 2 }];

describe('the edit state machine', () => {
  it('idle -> preparing -> uploading -> queued -> running (progress, previews) -> placing -> done', () => {
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
      { type: 'placed', layers: 2 },
    ]);
    expect(phases.map((p) => p.name)).toEqual([
      'preparing',
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
    expect(phases[10]).toMatchObject({ name: 'placing', editIds: ['e1', 'e2'], resultSha256s: ['a'.repeat(64), 'b'.repeat(64)] });
    expect(phases[11]).toEqual({ name: 'done', jobId: JOB, seed: 42, editIds: ['e1', 'e2'], layers: 2 });
    expect(phaseText(phases[11])).toBe('Done: 2 layer(s). Seed 42.');
    expect(phases.map(progressFraction)).toEqual([null, null, 0, 0, 0, 0.25, 0.25, 0.25, 0.25, 1, 1, 1]);
  });

  it('ignores events of another job and events after the end', () => {
    const [, , queued] = run(untilQueued);
    expect(reduceEdit(queued, ev({ type: 'started', jobId: 'other' }))).toBe(queued);
    const failed = reduceEdit(queued, ev({ type: 'failed', message: 'out of memory' }));
    expect(failed).toEqual({ name: 'failed', message: 'The edit failed on the server: out of memory' });
    expect(reduceEdit(failed, ev({ type: 'progress', step: 1, totalSteps: 2, variation: 0 }))).toBe(failed);
    expect(reduceEdit(failed, { type: 'placed', layers: 1 })).toBe(failed);
  });

  it('refuses out-of-order steps', () => {
    expect(reduceEdit(IDLE, { type: 'prepared' })).toBe(IDLE);
    expect(reduceEdit(IDLE, { type: 'job-created', jobId: JOB, seed: 1, position: 0 })).toBe(IDLE);
    const [exporting] = run([{ type: 'start' }]);
    expect(reduceEdit(exporting, { type: 'start' })).toBe(exporting); // Apply while active: nothing
    expect(reduceEdit(exporting, { type: 'dismiss' })).toBe(exporting);
  });

  it('cancel before the job exists: cancelled at once', () => {
    expect(run([{ type: 'start' }, { type: 'cancel-requested' }]).at(-1)).toEqual({ name: 'cancelled', message: CANCELLED_BEFORE_SENT });
    expect(run([{ type: 'start' }, { type: 'prepared' }, { type: 'cancel-requested' }]).at(-1)).toEqual({ name: 'cancelled', message: CANCELLED_BEFORE_SENT });
  });

  it('cancel a running job: "Cancelling…" until the server says cancelled', () => {
    const phases = run([...untilQueued, ev({ type: 'started' }), { type: 'cancel-requested' }, ev({ type: 'progress', step: 3, totalSteps: 20, variation: 0 }), ev({ type: 'cancelled' })]);
    expect(phases[4]).toMatchObject({ name: 'running', cancelRequested: true });
    expect([canCancel(phases[3]), canCancel(phases[4])]).toEqual([true, false]);
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
      expect(reduceEdit(end, { type: 'start' })).toEqual({ name: 'preparing' });
    }
  });

  it('explains the queue and steps', () => {
    expect(phaseText({ name: 'queued', jobId: JOB, seed: 1, position: 0, cancelRequested: false })).toBe('Queued: starts next.');
    expect(phaseText({ name: 'queued', jobId: JOB, seed: 1, position: 3, cancelRequested: false })).toBe('Queued: 3 edits ahead.');
    expect(phaseText({ name: 'running', jobId: JOB, seed: 1, step: 4, totalSteps: 20, previews: [], cancelRequested: false })).toBe('Step 4 of 20');
  });
});


describe('variations to pick from (the Photoshop panel’s policy)', () => {
  const succeeded = ev({ type: 'succeeded', editIds: ['e1', 'e2', 'e3'], resultSha256s: ['a', 'b', 'c'].map((c) => c.repeat(64)) });

  it('several results end in picking; thumbnails arrive; picks are placed one after another; a failed pick keeps the choice', () => {
    let s = newSession('pick');
    for (const action of [...untilQueued, ev({ type: 'started' }), succeeded]) s = reduceSession(s, action);
    expect(s.edit).toEqual({
      name: 'picking',
      jobId: JOB,
      seed: 42,
      busy: false,
      variations: [0, 1, 2].map((index) => ({ index, editId: `e${index + 1}`, sha256: 'abc'[index].repeat(64), thumbnail: null, placed: false })),
    });
    expect(isActive(s.edit)).toBe(false);
    s = reduceSession(s, { type: 'thumbnail', index: 1, dataUrl: PNG_URL });
    s = reduceSession(s, { type: 'place-picked' });
    expect(isActive(s.edit)).toBe(true);
    s = reduceSession(s, { type: 'placed', layers: 1, indexes: [1] });
    expect(s.edit).toMatchObject({ name: 'picking', busy: false });
    expect(s.edit.name === 'picking' && s.edit.variations.map((v) => [v.thumbnail, v.placed])).toEqual([
      [null, false],
      [PNG_URL, true],
      [null, false],
    ]);
    s = reduceSession(s, { type: 'place-picked' });
    s = reduceSession(s, { type: 'fail', message: 'Photoshop is busy' });
    expect(s.edit).toMatchObject({ name: 'picking', busy: false });
    expect(s.error).toBe('Photoshop is busy');
    s = reduceSession(s, { type: 'dismiss' });
    expect(s.edit).toEqual(IDLE);
  });

  it('one result, or the place-all policy: placing', () => {
    expect(run([...untilQueued, ev({ type: 'succeeded', editIds: ['e1'], resultSha256s: ['a'.repeat(64)] })], IDLE, 'pick').at(-1)).toMatchObject({ name: 'placing' });
    expect(run([...untilQueued, succeeded], IDLE, 'place-all').at(-1)).toMatchObject({ name: 'placing', editIds: ['e1', 'e2', 'e3'] });
  });
});

describe('the session around the edit', () => {
  const entries = [
    { id: 's', parentId: null, kind: 'source' as const, instruction: null, resultImageSha256: 'a', seed: null, variation: null, createdAt: '2026-01-01', authorName: null },
    { id: 'e1', parentId: 's', kind: 'edit' as const, instruction: 'one', resultImageSha256: 'b', seed: 1, variation: 0, createdAt: '2026-01-02', authorName: null },
  ];

  it('history loads, fails, clears with the pinned edit; a warning and an error last until the next Apply', () => {
    let s = newSession('pick');
    s = reduceSession(s, { type: 'history-loading' });
    expect(s.history.status).toBe('loading');
    s = reduceSession(s, { type: 'history-loaded', entries });
    expect(s.history).toEqual({ status: 'ready', entries, message: null });
    s = reduceSession(s, { type: 'history-failed', message: 'offline' });
    expect(s.history).toEqual({ status: 'error', entries, message: 'offline' });
    s = reduceSession(s, { type: 'continue-from', entry: { editId: 'e1', instruction: 'one', resultImageSha256: 'b' } });
    expect(s.continueFrom?.editId).toBe('e1');
    s = reduceSession(s, { type: 'history-cleared' });
    expect([s.history.entries, s.continueFrom]).toEqual([[], null]);
    s = reduceSession(s, { type: 'warning', message: 'started from pixels' });
    s = reduceSession(s, { type: 'error', message: 'could not restore' });
    expect([s.warning, s.error]).toEqual(['started from pixels', 'could not restore']);
    s = reduceSession(s, { type: 'start' });
    expect([s.warning, s.error, s.edit.name]).toEqual([null, null, 'preparing']);
  });
});
