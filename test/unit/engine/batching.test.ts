import { StepBatcher, concatBatch, groupCalls, splitBatch, type BatchLane } from '../../../server/engine/batching';
import type { Denoiser } from '../../../server/engine/denoiser';
import { sample } from '../../../server/engine/sample';
import { SAMPLERS } from '../../../server/engine/samplers';

/** A call: a job's latent at a noise level; the "network" treats each element on its own, like the UNet. */
interface Call {
  job: string;
  x: Float32Array;
  sigma: number;
}

/** The plain-function network: x0 = 0.8 x + 0.01 sigma (per element, so batching must not change it). */
const predict = (c: Call): Float32Array => Float32Array.from(c.x, (v) => 0.8 * v + 0.01 * c.sigma);

/** A runner that records which jobs shared each run, optionally failing on a job's call. */
function recordingRunner(opts: { failOn?: string; afterRun?: (runs: number) => void } = {}) {
  const runs: string[][] = [];
  const runner = async (calls: readonly Call[]): Promise<Float32Array[]> => {
    runs.push(calls.map((c) => c.job));
    opts.afterRun?.(runs.length);
    if (opts.failOn && calls.some((c) => c.job === opts.failOn)) throw new Error(`network failed on ${opts.failOn}'s input`);
    return calls.map(predict);
  };
  return { runs, runner };
}

const sigmas = (steps: number) => Float64Array.from({ length: steps + 1 }, (_, i) => (i === steps ? 0 : 10 - i));
const start = (seed: number) => Float32Array.from({ length: 6 }, (_, i) => Math.sin(seed * 7 + i));

/**
 * One job's sampling loop as the pipeline runs it: a member from its first step to its last. `lane`: joined
 * already (jobs that arrive together, see together()).
 */
async function job(
  batcher: StepBatcher<Call, Float32Array>,
  name: string,
  steps: number,
  opts: { key?: string; signal?: AbortSignal; lane?: BatchLane } = {},
): Promise<Float32Array> {
  const denoise: Denoiser = (x, sigma) => batcher.call(opts.key ?? '4x8x8', { job: name, x, sigma });
  const lane = opts.lane ?? batcher.join();
  try {
    return await sample(SAMPLERS.euler, denoise, start(name.charCodeAt(0)), sigmas(steps), { signal: opts.signal });
  } finally {
    lane.leave();
  }
}

/** Jobs that arrive together: all are members before the first one calls. */
function together(batcher: StepBatcher<Call, Float32Array>, jobs: { name: string; steps: number; key?: string; signal?: AbortSignal }[]) {
  const lanes = jobs.map(() => batcher.join());
  return jobs.map((j, k) => job(batcher, j.name, j.steps, { ...j, lane: lanes[k] }));
}

/** The same job alone, calling the network directly. */
function solo(name: string, steps: number): Promise<Float32Array> {
  return sample(SAMPLERS.euler, async (x, sigma) => predict({ job: name, x, sigma }), start(name.charCodeAt(0)), sigmas(steps));
}

describe('StepBatcher', () => {
  test('jobs sampling together share every run, and each gets exactly its solo result', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new StepBatcher(runner, 8);
    const results = await Promise.all(together(batcher, ['a', 'b', 'c'].map((name) => ({ name, steps: 4 }))));
    expect(runs).toEqual(Array.from({ length: 4 }, () => ['a', 'b', 'c']));
    for (const [k, name] of ['a', 'b', 'c'].entries()) expect(results[k]).toEqual(await solo(name, 4));
    expect(batcher.memberCount).toBe(0);
  });

  test('a lone job runs each call at once: the runner is called before call() returns', () => {
    const { runs, runner } = recordingRunner();
    const batcher = new StepBatcher(runner, 8);
    const lane = batcher.join();
    void batcher.call('k', { job: 'a', x: start(1), sigma: 1 });
    expect(runs).toEqual([['a']]); // synchronously: no timer, no turn of the event loop
    lane.leave();
  });

  test('a job that finishes leaves: the others go on without waiting for it', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new StepBatcher(runner, 8);
    const [short, long] = await Promise.all(together(batcher, [{ name: 'a', steps: 2 }, { name: 'b', steps: 5 }]));
    expect(runs).toEqual([['a', 'b'], ['a', 'b'], ['b'], ['b'], ['b']]);
    expect(short).toEqual(await solo('a', 2));
    expect(long).toEqual(await solo('b', 5));
  });

  test('jobs arriving one after another: the first runs alone at once, the rest catch up at the next step', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new StepBatcher(runner, 8);
    const results = await Promise.all(['a', 'b', 'c'].map((name) => job(batcher, name, 3)));
    expect(runs).toEqual([['a'], ['b', 'c', 'a'], ['b', 'c', 'a'], ['b', 'c']]);
    for (const [k, name] of ['a', 'b', 'c'].entries()) expect(results[k]).toEqual(await solo(name, 3));
  });

  test('a job joins at its first step while another is mid-way', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new StepBatcher(runner, 8);
    const first = job(batcher, 'a', 5);
    await new Promise((resolve) => setImmediate(resolve)); // 'a' has run its first steps alone
    const alone = runs.length;
    expect(alone).toBeGreaterThanOrEqual(1);
    const second = job(batcher, 'b', 3);
    const [a, b] = await Promise.all([first, second]);
    expect(runs.slice(0, alone).every((r) => r.join() === 'a')).toBe(true);
    expect(runs.slice(alone, alone + Math.min(3, 5 - alone))).toEqual(Array.from({ length: Math.min(3, 5 - alone) }, () => ['a', 'b']));
    expect(a).toEqual(await solo('a', 5));
    expect(b).toEqual(await solo('b', 3));
  });

  test('a call with another key (another working size) never shares a run', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new StepBatcher(runner, 8);
    await Promise.all(together(batcher, [{ name: 'a', steps: 3, key: '4x8x8' }, { name: 'b', steps: 3, key: '4x16x16' }, { name: 'c', steps: 3, key: '4x8x8' }]));
    expect(runs).toEqual(Array.from({ length: 3 }, () => [['a', 'c'], ['b']]).flat());
  });

  test('at most maxCalls calls share a run, in arrival order', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new StepBatcher(runner, 2);
    await Promise.all(together(batcher, ['a', 'b', 'c', 'd', 'e'].map((name) => ({ name, steps: 2 }))));
    expect(runs).toEqual([['a', 'b'], ['c', 'd'], ['e'], ['a', 'b'], ['c', 'd'], ['e']]);
  });

  test("an error in one job's call fails that job only; the others get their results", async () => {
    const { runs, runner } = recordingRunner({ failOn: 'b' });
    const batcher = new StepBatcher(runner, 8);
    const settled = await Promise.allSettled(together(batcher, ['a', 'b', 'c'].map((name) => ({ name, steps: 3 }))));
    expect(settled[1]).toEqual({ status: 'rejected', reason: new Error("network failed on b's input") });
    expect(settled[0]).toEqual({ status: 'fulfilled', value: await solo('a', 3) });
    expect(settled[2]).toEqual({ status: 'fulfilled', value: await solo('c', 3) });
    // the shared run failed, each call was retried alone; then 'b' had left
    expect(runs).toEqual([['a', 'b', 'c'], ['a'], ['b'], ['c'], ['a', 'c'], ['a', 'c']]);
    expect(batcher.memberCount).toBe(0);
  });

  test('cancelling one job leaves the others exactly as they would be alone', async () => {
    const abort = new AbortController();
    const { runs, runner } = recordingRunner({ afterRun: (n) => n === 2 && abort.abort() }); // during the second step
    const batcher = new StepBatcher(runner, 8);
    const [a0, cancelled, c0] = together(batcher, [{ name: 'a', steps: 4 }, { name: 'b', steps: 4, signal: abort.signal }, { name: 'c', steps: 4 }]);
    const others = Promise.all([a0, c0]);
    await expect(cancelled).rejects.toThrow('edit cancelled');
    const [a, c] = await others;
    expect(a).toEqual(await solo('a', 4));
    expect(c).toEqual(await solo('c', 4));
    expect(runs).toEqual([['a', 'b', 'c'], ['a', 'b', 'c'], ['a', 'c'], ['a', 'c']]);
    expect(batcher.memberCount).toBe(0);
  });

  test('a member busy elsewhere (not calling) delays the others by one turn of the event loop at most', async () => {
    const { runs, runner } = recordingRunner();
    const batcher = new StepBatcher(runner, 8);
    const busy = batcher.join(); // joined but never calls, like an edit decoding a preview
    expect(await job(batcher, 'a', 3)).toEqual(await solo('a', 3));
    expect(runs).toEqual([['a'], ['a'], ['a']]);
    busy.leave();
  });

  test('a runner returning the wrong number of outputs fails the calls with a clear error', async () => {
    const batcher = new StepBatcher<Call, Float32Array>(async () => [], 4);
    await expect(batcher.call('k', { job: 'a', x: start(1), sigma: 1 })).rejects.toThrow('the batched run returned 0 outputs for 1 calls');
    expect(() => new StepBatcher(async () => [], 0)).toThrow('maxCalls must be an integer >= 1, got 0');
  });
});

describe('batch helpers', () => {
  test('groupCalls keeps first-arrival key order and arrival order within a key, cut to max', () => {
    const items = ['a1', 'b1', 'a2', 'a3', 'c1', 'b2', 'a4'];
    expect(groupCalls(items, (s) => s[0], 3)).toEqual([['a1', 'a2', 'a3'], ['a4'], ['b1', 'b2'], ['c1']]);
  });

  test('concatBatch stacks parts; splitBatch cuts rows back into them', () => {
    const parts = [Float32Array.of(1, 2, 3, 4), Float32Array.of(5, 6), Float32Array.of(7, 8, 9, 10, 11, 12)];
    const joined = concatBatch(parts);
    expect(Array.from(joined)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(splitBatch(joined, [2, 1, 3], 2)).toEqual(parts);
    expect(concatBatch([parts[0]])).toBe(parts[0]); // one part: no copy
    expect(() => splitBatch(joined, [2, 2], 2)).toThrow('the batched output has 12 values, expected 4 rows x 2');
  });
});
