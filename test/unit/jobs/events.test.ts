import { JobEventLog } from '../../../server/jobs/events';

describe('JobEventLog fan-out', () => {
  test('append only records: streams hear of events on the next turn, all at once, in order', async () => {
    const log = new JobEventLog('job-1');
    const seen: number[] = [];
    const reading = (async () => {
      for await (const e of log.stream()) seen.push(e.seq);
    })();
    await new Promise((r) => setImmediate(r)); // the stream is listening
    for (let step = 1; step <= 3; step++) log.append({ type: 'progress', step, totalSteps: 3, variation: 0 });
    log.append({ type: 'cancelled' });
    for (let i = 0; i < 20; i++) await Promise.resolve(); // the appender's own continuations run first ...
    expect(seen).toEqual([]); // ... without the subscribers' work queued in between
    await reading;
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  test('a stream that starts between an append and its delivery gets each event once', async () => {
    const log = new JobEventLog('job-2');
    log.append({ type: 'queued', position: 0 });
    const seen: number[] = [];
    const reading = (async () => {
      for await (const e of log.stream()) seen.push(e.seq);
    })();
    log.append({ type: 'started' });
    log.append({ type: 'cancelled' });
    await reading;
    expect(seen).toEqual([1, 2, 3]);
  });
});
