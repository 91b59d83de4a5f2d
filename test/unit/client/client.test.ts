/**
 * The shared client over a scripted fetch: what goes on the wire, how the event stream is read, what happens
 * when it breaks, how polling turns snapshots into the same events, the one error type and its messages, and
 * the one behaviour for a parent edit the server no longer knows. (test/integration/client.test.ts runs it
 * against the real server.)
 */
import { authorLabel, ClientError, createClient, errorForStatus, modelLabel, signedInLabel, PARENT_UNKNOWN_WARNING, snapshotToEvents, submitEdit, type FetchInit, type FetchLike, type ResponseLike } from '../../../shared/client';
import type { EditRequestInput, JobEvent, JobSnapshot } from '../../../shared/protocol';
import { jobSnapshot } from '../../support/job-snapshot';

const URL_ = 'http://gpu:7860';
const JOB = '55555555-5555-4555-8555-555555555555';
const DOC = '11111111-1111-4111-8111-111111111111';

function response(status: number, body: string, opts: { stream?: string[] } = {}): ResponseLike {
  const chunks = (opts.stream ?? []).map((c) => new TextEncoder().encode(c));
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: { get: () => null },
    text: async () => body,
    arrayBuffer: async () => new TextEncoder().encode(body).buffer as ArrayBuffer,
    body: opts.stream
      ? {
          getReader: () => ({
            read: async () => (chunks.length ? { done: false, value: chunks.shift()! } : { done: true }),
            cancel: async () => undefined,
          }),
        }
      : null,
  };
}

const trpcData = (data: unknown) => response(200, JSON.stringify({ result: { data } }));
const sse = (...messages: string[]) => messages.map((m) => `${m}\n\n`);
type Bare<E> = E extends JobEvent ? Omit<E, 'jobId'> : never;
const data = (e: Bare<JobEvent>) => `id: ${e.seq}\ndata: ${JSON.stringify({ jobId: JOB, ...e })}`;
const snap = (over: Partial<JobSnapshot>): JobSnapshot => jobSnapshot({ jobId: JOB, documentId: DOC, ...over });

function scripted(handler: (url: string, init: FetchInit) => ResponseLike | Promise<ResponseLike>) {
  const calls: { url: string; init: FetchInit }[] = [];
  const fetch: FetchLike = async (url, init) => {
    calls.push({ url, init });
    return handler(url, init);
  };
  return { calls, fetch };
}

async function collect(events: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('the wire', () => {
  it('queries, mutations and uploads carry the token as a header; only the event stream also has it in its URL', async () => {
    const { calls, fetch } = scripted((url) => {
      if (url.includes('jobs.watch')) return response(200, '', { stream: sse('event: connected\ndata: {}', data({ type: 'cancelled', seq: 1 })) });
      if (url.includes('documents.open')) return trpcData({ documentId: DOC, created: true });
      return response(200, JSON.stringify({ sha256: 'a'.repeat(64), width: 2, height: 1 }));
    });
    const client = createClient({ serverUrl: `${URL_}/`, token: ' s3cret ', fetch, transport: 'sse' });
    expect(await client.openDocument('photoshop', 'key')).toBe(DOC);
    expect(await client.putImage(new Uint8Array(8), { rgba: { width: 2, height: 1 } })).toEqual({ sha256: 'a'.repeat(64), width: 2, height: 1 });
    expect(await collect(client.follow(JOB))).toEqual([{ type: 'cancelled', jobId: JOB, seq: 1 }]);
    expect(calls.map((c) => [c.init.method, c.url])).toEqual([
      ['POST', `${URL_}/trpc/documents.open`],
      ['PUT', `${URL_}/v1/blobs?width=2&height=1`],
      ['GET', `${URL_}/trpc/jobs.watch?input=${encodeURIComponent(JSON.stringify({ jobId: JOB }))}&connectionParams=${encodeURIComponent('{"token":"s3cret"}')}`],
    ]);
    expect(calls.map((c) => c.init.headers.Authorization)).toEqual(['Bearer s3cret', 'Bearer s3cret', 'Bearer s3cret']);
    expect(calls[0].init.body).toBe(JSON.stringify({ host: 'photoshop', hostDocumentKey: 'key' }));
    expect(calls[1].init.headers['Content-Type']).toBe('application/octet-stream');
  });

  it('reads an event stream split anywhere, skipping pings, to the terminal event', async () => {
    const text = sse('event: connected\ndata: {}', data({ type: 'queued', seq: 1, position: 0 }), 'event: ping\ndata: ', data({ type: 'started', seq: 2 }), data({ type: 'succeeded', seq: 3, editIds: ['e'], resultSha256s: ['b'.repeat(64)] })).join('');
    const pieces = [text.slice(0, 7), text.slice(7, 60), text.slice(60, 61), text.slice(61)];
    const { fetch } = scripted(() => response(200, '', { stream: pieces }));
    const events = await collect(createClient({ serverUrl: URL_, token: '', fetch, transport: 'sse' }).follow(JOB));
    expect(events.map((e) => [e.type, e.seq])).toEqual([
      ['queued', 1],
      ['started', 2],
      ['succeeded', 3],
    ]);
  });

  it('a stream that breaks is continued by polling, without saying twice what it already said', async () => {
    let polls = 0;
    const { calls, fetch } = scripted((url) => {
      if (url.includes('jobs.watch')) return response(200, '', { stream: sse(data({ type: 'started', seq: 2 }), data({ type: 'progress', seq: 3, step: 1, totalSteps: 4, variation: 0 })) });
      polls++;
      const running = snap({ state: 'running', startedAt: 1, progress: { step: 1, totalSteps: 4, variation: 0 }, lastSeq: 3 });
      return trpcData(polls === 1 ? running : snap({ ...running, state: 'succeeded', progress: { step: 4, totalSteps: 4, variation: 0 }, result: { editIds: ['e'], resultSha256s: ['c'.repeat(64)] }, lastSeq: 6 }));
    });
    const events = await collect(createClient({ serverUrl: URL_, token: '', fetch, transport: 'sse', sleep: async () => undefined }).follow(JOB));
    expect(events.map((e) => `${e.type}@${e.seq}`)).toEqual(['started@2', 'progress@3', 'progress@6', 'succeeded@6']);
    expect(calls.filter((c) => c.url.includes('jobs.get'))).toHaveLength(2);
  });

  it('polling retries a few network failures with back-off, then says contact was lost', async () => {
    const waits: number[] = [];
    const { fetch } = scripted(() => {
      throw new TypeError('fetch failed');
    });
    const client = createClient({ serverUrl: URL_, token: '', fetch, transport: 'poll', pollMs: 100, sleep: async (ms) => void waits.push(ms) });
    await expect(collect(client.follow(JOB))).rejects.toMatchObject({ kind: 'network', message: expect.stringMatching(/^Lost contact with the server while the edit was running/) });
    expect(waits).toEqual([200, 400, 800, 1600]);
  });

  it('a tRPC error becomes one ClientError with the server’s words and code', async () => {
    const { fetch } = scripted(() => response(400, JSON.stringify({ error: { message: 'regions[0].maskSha256: the mask is 10x10 but the image is 20x20', code: -32600, data: { code: 'BAD_REQUEST', httpStatus: 400 } } })));
    const err = await createClient({ serverUrl: URL_, token: '', fetch, transport: 'poll' }).createEdit({} as EditRequestInput).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toMatchObject({ kind: 'bad-request', status: 400, code: 'BAD_REQUEST', message: 'regions[0].maskSha256: the mask is 10x10 but the image is 20x20' });
  });
});

describe('following a job by polling', () => {
  it('turns successive snapshots into the events SSE would have sent', () => {
    const s1 = snap({ position: 2 });
    const s2 = snap({ position: 0, lastSeq: 2 });
    const s3 = snap({ state: 'running', position: null, startedAt: 5, progress: { step: 4, totalSteps: 20, variation: 0 }, lastSeq: 6 });
    const s4 = { ...s3, progress: { step: 8, totalSteps: 20, variation: 0 }, previewStep: 5, previewDataUrl: 'data:image/png;base64,AA', lastSeq: 9 };
    const s5 = { ...s4, state: 'succeeded' as const, previewDataUrl: null, result: { editIds: ['e'], resultSha256s: ['a'.repeat(64)] }, lastSeq: 12 };
    expect(snapshotToEvents(null, s1).map((e) => e.type)).toEqual(['queued']);
    expect(snapshotToEvents(s1, s1)).toEqual([]);
    expect(snapshotToEvents(s1, s2)).toEqual([{ type: 'queued', jobId: JOB, seq: 2, position: 0 }]);
    expect(snapshotToEvents(s2, s3).map((e) => e.type)).toEqual(['started', 'progress']);
    expect(snapshotToEvents(s3, s4)).toEqual([
      { type: 'progress', jobId: JOB, seq: 9, step: 8, totalSteps: 20, variation: 0 },
      { type: 'preview', jobId: JOB, seq: 9, step: 5, totalSteps: 20, variation: 0, dataUrl: 'data:image/png;base64,AA' },
    ]);
    expect(snapshotToEvents(s4, s5)).toEqual([{ type: 'succeeded', jobId: JOB, seq: 12, editIds: ['e'], resultSha256s: ['a'.repeat(64)] }]);
    expect(snapshotToEvents(s4, { ...s4, state: 'failed', error: 'boom' }).at(-1)).toMatchObject({ type: 'failed', message: 'boom' });
    expect(snapshotToEvents(s2, snap({ state: 'cancelled', position: null })).map((e) => e.type)).toEqual(['cancelled']);
    expect(snapshotToEvents(s4, { ...s5, result: { editIds: [], resultSha256s: [] } }).at(-1)).toMatchObject({ type: 'failed', message: expect.stringMatching(/no usable result/) });
  });
});

describe('errors that say what to do', () => {
  it('one message per kind of failure, with the host’s hint for an unreachable server', () => {
    expect(errorForStatus(URL_, null, null, 'fetch failed', "the plugin's manifest must list the server")).toMatchObject({
      kind: 'network',
      message: "Can't reach the layerloop server at http://gpu:7860: fetch failed. Check that it is running and the URL in Settings; the plugin's manifest must list the server.",
    });
    expect(errorForStatus(URL_, 401, 'UNAUTHORIZED', 'this server requires a token', '').message).toBe(
      'The server at http://gpu:7860 did not accept the token: this server requires a token. Paste your personal token (or the one the server was started with, --token / LAYERLOOP_TOKEN) into Settings.',
    );
    expect(errorForStatus(URL_, 429, null, 'queue full', '').message).toBe("The server's queue is full: queue full. Wait for running edits to finish, then Apply again.");
    expect(errorForStatus(URL_, 404, null, null, '').message).toBe('http://gpu:7860 answered 404: is it a layerloop server? Check the URL in Settings.');
    expect(errorForStatus(URL_, 500, null, 'disk full', '')).toMatchObject({ kind: 'server', message: 'The server failed (HTTP 500): disk full. Its log says more; try again.' });
    // 507: the server's own message says whose room ran out (the disk, or the user's storage quota) and what to do
    expect(errorForStatus(URL_, 507, 'PRECONDITION_FAILED', 'your storage quota is used up: ask an admin', '')).toMatchObject({ kind: 'bad-request', message: 'your storage quota is used up: ask an admin' });
  });
});

describe('a parent edit the server no longer knows', () => {
  const notFound = new ClientError('not-found', 'no edit 3333', 404, 'NOT_FOUND');
  const request = (pixelsSha256?: string): EditRequestInput => ({
    documentId: DOC,
    parent: { kind: 'edit', editId: '33333333-3333-4333-8333-333333333333', ...(pixelsSha256 ? { pixelsSha256 } : {}) },
    regions: [{ instruction: 'x', maskSha256: null }],
  });

  it('starts from the layer’s pixels when they were sent, with a warning; otherwise says what to select', async () => {
    const sent: EditRequestInput[] = [];
    const client = {
      createEdit: async (r: EditRequestInput) => {
        sent.push(r);
        if (r.parent.kind === 'edit') throw notFound;
        return { jobId: JOB, documentId: DOC, position: 0, seed: 1 };
      },
    } as unknown as Parameters<typeof submitEdit>[0];
    expect(await submitEdit(client, request('d'.repeat(64)))).toEqual({ created: { jobId: JOB, documentId: DOC, position: 0, seed: 1 }, warning: PARENT_UNKNOWN_WARNING });
    expect(sent.map((r) => r.parent)).toEqual([request('d'.repeat(64)).parent, { kind: 'source', imageSha256: 'd'.repeat(64) }]);
    await expect(submitEdit(client, request())).rejects.toMatchObject({ kind: 'not-found', message: expect.stringMatching(/^The server does not know the edit to continue from \(no edit 3333\): select the layer itself/) });
  });
});

describe('who is signed in (me)', () => {
  it('reads the user and workspaces with the token; a server from before accounts answers null; a bad token is an auth error', async () => {
    const me = { user: { id: DOC, name: 'ben', role: 'member' }, workspaces: [{ id: JOB, name: 'studio-a' }], defaultWorkspaceId: JOB, via: 'token' };
    const { calls, fetch } = scripted(() => trpcData(me));
    const client = createClient({ serverUrl: URL_, token: 'll_tok', fetch, transport: 'poll' });
    const signedIn = await client.me();
    expect(signedIn).toEqual(me);
    expect(signedInLabel(signedIn)).toBe('ben (studio-a)');
    expect(signedInLabel({ ...signedIn!, via: 'shared-token' })).toBeNull(); // the server's default user: nothing to show
    expect(signedInLabel(null)).toBeNull();
    expect(calls[0].url).toBe(`${URL_}/trpc/me`);
    expect(calls[0].init.headers).toMatchObject({ Authorization: 'Bearer ll_tok' });

    const old = createClient({ serverUrl: URL_, token: '', fetch: scripted(() => response(404, JSON.stringify({ error: { message: 'No procedure found on path "me"', code: -32004, data: { code: 'NOT_FOUND', httpStatus: 404 } } }))).fetch, transport: 'poll' });
    expect(await old.me()).toBeNull();

    const refused = createClient({ serverUrl: URL_, token: 'll_old', fetch: scripted(() => response(401, JSON.stringify({ error: { message: 'this token is not valid on this server', code: -32001, data: { code: 'UNAUTHORIZED', httpStatus: 401 } } }))).fetch, transport: 'poll' });
    await expect(refused.me()).rejects.toMatchObject({ kind: 'auth' });
  });

  it('reads history authors (null from a server that names none) and labels them; the model line carries the family', async () => {
    const node = { id: 'n1', parentId: null, kind: 'source', instruction: null, resultImageSha256: 'a'.repeat(64), seed: null, variation: null, createdAt: '2026-01-01T00:00:00.000Z' };
    const named = createClient({ serverUrl: URL_, token: '', fetch: scripted(() => trpcData({ documentId: DOC, nodes: [{ ...node, authorId: JOB, authorName: 'ben' }] })).fetch, transport: 'poll' });
    const [entry] = await named.history(DOC);
    expect(entry.authorName).toBe('ben');
    expect(authorLabel(entry)).toBe('by ben');
    const older = createClient({ serverUrl: URL_, token: '', fetch: scripted(() => trpcData({ documentId: DOC, nodes: [node] })).fetch, transport: 'poll' });
    const [bare] = await older.history(DOC);
    expect(bare.authorName).toBeNull();
    expect(authorLabel(bare)).toBe('');
    expect(modelLabel({ name: 'tiny-klein', provider: 'cpu', family: 'FLUX.2 [klein]', readsReferences: true })).toBe('tiny-klein (FLUX.2 [klein]) on cpu');
    expect(modelLabel({ name: 'tiny-pix2pix', provider: 'cuda' })).toBe('tiny-pix2pix on cuda'); // a server from before families
  });
});
