import { AdmissionRoom, type AdmissionOptions } from '../../../server/jobs/admission';
import { QueueFullError } from '../../../server/jobs/queue';

/** A queue of `capacity` slots (the room only sees hasRoom/admit), and timers the test fires by hand. */
function setup(opts: Partial<AdmissionOptions> & { capacity?: number; perDocument?: number } = {}) {
  const inQueue: string[] = [];
  const timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  const capacity = opts.capacity ?? 1;
  const perDocument = opts.perDocument ?? Infinity;
  const room = new AdmissionRoom({
    hasRoom: (doc) => inQueue.length < capacity && inQueue.filter((d) => d === doc).length < perDocument,
    estimateWaitMs: (ahead) => (ahead + 1) * 100,
    queueLength: capacity,
    maxWaitMs: 10_000,
    maxWaiting: 32,
    maxWaitingPerDocument: 8,
    setTimer: (fn, ms) => {
      const t = { fn, ms, cancelled: false };
      timers.push(t);
      return { cancel: () => void (t.cancelled = true) };
    },
    ...opts,
  });
  const admitted: string[] = [];
  const enter = (doc: string, label = doc, signal?: AbortSignal, user?: string) =>
    room.enter(
      doc,
      () => {
        inQueue.push(doc);
        admitted.push(label);
        return label;
      },
      signal,
      user,
    );
  /** one job leaves the queue (it started on the engine), and the room hears of it */
  const free = async () => {
    inQueue.shift();
    room.wake();
    await new Promise((r) => setImmediate(r));
  };
  return { room, enter, free, admitted, inQueue, timers };
}

describe('AdmissionRoom', () => {
  test('users take turns first, then their documents: eight documents of one user get no more turns than one of another', async () => {
    const { enter, free, admitted } = setup();
    await enter('x', 'x0', undefined, 'heavy'); // fills the queue
    const pending = [
      ...['d1', 'd2', 'd3', 'd4', 'd5', 'd6'].map((doc) => enter(doc, `heavy-${doc}`, undefined, 'heavy')),
      enter('e1', 'light-1', undefined, 'light'),
      enter('e1', 'light-2', undefined, 'light'),
      enter('e2', 'light-3', undefined, 'light'),
    ];
    for (let i = 0; i < pending.length; i++) await free();
    await Promise.all(pending);
    // light was never admitted, so it goes first; then they alternate, each user's documents in turn
    expect(admitted).toEqual(['x0', 'light-1', 'heavy-d1', 'light-3', 'heavy-d2', 'light-2', 'heavy-d3', 'heavy-d4', 'heavy-d5', 'heavy-d6']);
  });

  test('the per-document limit counts waiters of every user', async () => {
    const { enter } = setup({ maxWaitingPerDocument: 2 });
    await enter('A', 'a0', undefined, 'u1');
    void enter('A', 'a1', undefined, 'u1');
    void enter('A', 'a2', undefined, 'u2');
    await expect(enter('A', 'a3', undefined, 'u3')).rejects.toBeInstanceOf(QueueFullError);
  });

  test('with room and nobody waiting, a request goes straight in', async () => {
    const { enter, admitted } = setup({ capacity: 2 });
    expect(await enter('A')).toBe('A');
    expect(admitted).toEqual(['A']);
  });

  test('a full queue: requests wait, and freed slots go round-robin over documents (FIFO within one)', async () => {
    const { enter, free, admitted, room } = setup();
    await enter('A', 'a0'); // A was just served
    const pending = [enter('A', 'a1'), enter('A', 'a2'), enter('B', 'b1'), enter('A', 'a3'), enter('C', 'c1'), enter('B', 'b2')];
    expect(room.size).toBe(6);
    for (let i = 0; i < 6; i++) await free();
    expect(await Promise.all(pending)).toEqual(['a1', 'a2', 'b1', 'a3', 'c1', 'b2']);
    // B and C had never been admitted, so they go first; then whoever was served longest ago
    expect(admitted).toEqual(['a0', 'b1', 'c1', 'a1', 'b2', 'a2', 'a3']);
  });

  test('a request arriving while others wait does not jump the line, even into a slot that just freed', async () => {
    const { enter, free, admitted, inQueue } = setup();
    await enter('A');
    const b = enter('B');
    inQueue.shift(); // a slot frees, but the room has not been told yet
    const c = enter('C'); // the newcomer queues behind B (and its arrival lets B in)
    await b;
    expect(admitted).toEqual(['A', 'B']);
    await free();
    await c;
    expect(admitted).toEqual(['A', 'B', 'C']);
  });

  test('a document at its queue cap waits while others go in', async () => {
    const { enter, admitted } = setup({ capacity: 3, perDocument: 1 });
    await enter('A', 'a1');
    const a2 = enter('A', 'a2');
    await enter('B', 'b1');
    expect(admitted).toEqual(['a1', 'b1']);
    void a2;
  });

  test('an expected wait beyond maxWaitMs, a full room or too many waiters of one document: refused at once with a retry time', async () => {
    const slow = setup({ estimateWaitMs: () => 25_000 });
    await slow.enter('A');
    await expect(slow.enter('B')).rejects.toEqual(expect.objectContaining({ name: 'QueueFullError', scope: 'queue', retryAfterSeconds: 25 }));

    const small = setup({ maxWaiting: 1 });
    await small.enter('A');
    void small.enter('B');
    await expect(small.enter('C')).rejects.toBeInstanceOf(QueueFullError);

    const oneDoc = setup({ maxWaitingPerDocument: 2 });
    await oneDoc.enter('A');
    void oneDoc.enter('A');
    void oneDoc.enter('A');
    await expect(oneDoc.enter('A')).rejects.toEqual(expect.objectContaining({ scope: 'document', limit: 2 }));
    expect(oneDoc.room.size).toBe(2);
  });

  test('a request that waited maxWaitMs is refused and leaves the line; one whose client left, too', async () => {
    const { enter, room, timers, free, admitted } = setup();
    await enter('A');
    const timedOut = enter('B');
    const abort = new AbortController();
    const gone = enter('C', 'C', abort.signal);
    expect(timers.map((t) => t.ms)).toEqual([10_000, 10_000]);
    timers[0].fn();
    await expect(timedOut).rejects.toEqual(expect.objectContaining({ name: 'QueueFullError' }));
    abort.abort(new Error('client closed'));
    await expect(gone).rejects.toThrow('client closed');
    expect(room.size).toBe(0);
    await free();
    expect(admitted).toEqual(['A']);
  });

  test('what admit throws (a closed queue) reaches the waiter', async () => {
    const { room } = setup();
    await expect(room.enter('A', () => { throw new Error('closed'); })).rejects.toThrow('closed');
  });
});
