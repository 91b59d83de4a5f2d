/**
 * Users, workspaces and isolation on the real server (dist/server/main.js) with the embedded store: users and
 * tokens made with the admin CLI (dist/cli/users.js) against the same data directory, then the cross-tenant
 * probe (test/support/isolation.ts), the token lifecycle (revoked and disabled refused at once, open streams
 * included), the per-user limits, and the shared-token and token-less modes acting as the default user.
 * The same probe runs on PostgreSQL + S3 in test/backends/isolation.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { createClient, encodeHistoryMarker, openHistory, parseHistoryMarker, type FetchLike, type HistoryMarker } from '../../shared/client';
import { FIXTURES, logLines, startServer, tempDataDir, type ServerProcess } from '../support/server';
import { type Tenant, call, editPastQuota, expectQuotaRefusal, probeCases, putBlob, runProbe, usersCli, work } from '../support/isolation';

const PNG = fs.readFileSync(path.join(FIXTURES, 'shapes-128.png'));
type Data<T> = { result: { data: T } };
const data = <T>(text: string): T => (JSON.parse(text) as Data<T>).result.data;

describe('isolation between workspaces (embedded store)', () => {
  let dataDir: string;
  let server: ServerProcess;
  let alice: string;
  let bob: string;
  let admin: string;
  let a: Tenant;
  let b: Tenant;

  beforeAll(async () => {
    dataDir = tempDataDir();
    const store = ['--data-dir', dataDir];
    alice = (await usersCli(['add', 'alice', '--workspace', 'studio-a', ...store])).last;
    bob = (await usersCli(['add', 'bob', '--workspace', 'studio-b', ...store])).last;
    admin = (await usersCli(['add', 'root', '--workspace', 'ops', '--admin', ...store])).last;
    server = await startServer({ dataDir });
    a = await work(server.url, alice, 'figma-file-shared:page-1', 1);
    b = await work(server.url, bob, 'figma-file-b:page-1', 2);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('tokens from the CLI: printed once as its last line, stored only as a scrypt hash', () => {
    expect(alice).toMatch(/^ll_[0-9a-f-]{36}_[A-Za-z0-9_-]{43}$/);
    const db = new Database(path.join(dataDir, 'layerloop.sqlite'), { readonly: true });
    try {
      const rows = db.prepare('SELECT hash FROM tokens').all() as { hash: string }[];
      expect(rows).toHaveLength(3);
      for (const { hash } of rows) {
        expect(hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]{43}$/);
        for (const token of [alice, bob, admin]) expect(hash).not.toContain(token.slice(-43));
      }
    } finally {
      db.close();
    }
  });

  test('the CLI lists users and workspaces, adds workspaces and members, and refuses what it cannot do with exit 1 or 2', async () => {
    const store = ['--data-dir', dataDir];
    expect((await usersCli(['workspaces', 'add', 'studio-x', ...store])).stdout).toMatch(/^made workspace 'studio-x' \([0-9a-f-]{36}\)/);
    await usersCli(['users', 'join', 'root', '--workspace', 'studio-x', ...store]);
    const users = (await usersCli(['users', 'list', ...store])).stdout.split('\n');
    expect(users[0]).toMatch(/^NAME\s+ROLE\s+STATE\s+TOKENS\s+WORKSPACES$/);
    expect(users.find((l) => l.startsWith('root'))).toMatch(/^root\s+admin\s+active\s+1\s+ops,studio-x$/);
    expect(users.find((l) => l.startsWith('bob'))).toMatch(/^bob\s+member\s+active\s+1\s+studio-b$/);
    const workspaces = (await usersCli(['workspaces', 'list', ...store])).stdout;
    // 1 member, 1 document, 1 job; 4 blobs: the upload, the mask, the result and its latent
    expect(workspaces).toMatch(/studio-a\s+[0-9a-f-]{36}\s+1\s+1\s+1\s+4\s+[1-9]\d*\n/);
    await expect(usersCli(['add', 'alice', '--workspace', 'studio-a', ...store])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/a user named 'alice' already exists/) });
    await expect(usersCli(['tokens', 'create', 'nobody', ...store])).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/no user named 'nobody'/) });
    await expect(usersCli(['add', 'zed', ...store])).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/say which workspace/) });
  });

  test('me: the user and its workspaces, nothing of others', async () => {
    const me = data<{ user: { name: string; role: string }; workspaces: { id: string; name: string }[]; via: string }>((await call(server.url, bob, 'query', 'me', undefined)).text);
    expect(me.user).toMatchObject({ name: 'bob', role: 'member' });
    expect(me.workspaces.map((w) => w.name)).toEqual(['studio-b']);
    expect(me.via).toBe('token');
  });

  test('the cross-tenant probe: at least 40 questions about the other workspace, each answered as for something unknown', async () => {
    // a long job of A, running while B asks
    const created = await call(server.url, alice, 'mutation', 'edits.create', {
      documentId: a.documentId,
      parent: { kind: 'source', imageSha256: a.sourceSha },
      regions: [{ instruction: 'make everything purple', maskSha256: null }],
      options: { steps: 100, variations: 4, previewEvery: 0 },
    });
    const running = data<{ jobId: string }>(created.text);
    const cases = probeCases(server.url, a, b, running);
    expect(cases.length).toBeGreaterThanOrEqual(40);
    const { failures, answers } = await runProbe(cases, a);
    expect(failures).toEqual([]);
    expect(answers.filter((x) => x.status === 404 || x.status === 200).length).toBe(cases.length); // 200 only for SSE streams
    // B's cancels did not touch A's job: it runs to success
    for (let i = 0; ; i++) {
      const snap = data<{ state: string; cancelRequested: boolean }>((await call(server.url, alice, 'query', 'jobs.get', { jobId: running.jobId })).text);
      expect(snap.cancelRequested).toBe(false);
      if (snap.state === 'succeeded') break;
      expect(['queued', 'running']).toContain(snap.state);
      if (i > 1200) throw new Error('the running job did not finish');
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 180_000);

  test("documents.open with the other's host key opens a history of one's own: a new id, nothing of A's", async () => {
    // create: false (what a plugin sends when the file's marker names another workspace): 404, no document made
    const open = (token: string, extra: object) => call(server.url, token, 'mutation', 'documents.open', { host: 'figma', hostDocumentKey: a.hostKey, ...extra });
    const refused = await open(bob, { create: false });
    expect(refused.status).toBe(404);
    expect((JSON.parse(refused.text) as { error: { message: string } }).error.message).toBe('no history for this file in your workspace: open it with create: true to start one');
    expect(data<{ documentId: string; created: boolean }>((await open(alice, { create: false })).text)).toEqual({ documentId: a.documentId, created: false });
    const bad = await open(bob, { create: 'no' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('create must be true or false, got \\"no\\"');
    const opened = data<{ documentId: string; created: boolean }>((await call(server.url, bob, 'mutation', 'documents.open', { host: 'figma', hostDocumentKey: a.hostKey })).text);
    expect(opened.created).toBe(true);
    expect(opened.documentId).not.toBe(a.documentId);
    expect(data<{ nodes: unknown[] }>((await call(server.url, bob, 'query', 'documents.history', { documentId: opened.documentId })).text).nodes).toEqual([]);
    // and A still gets its own
    expect(data<{ documentId: string }>((await call(server.url, alice, 'mutation', 'documents.open', { host: 'figma', hostDocumentKey: a.hostKey })).text).documentId).toBe(a.documentId);
  });

  test("a file whose marker names another workspace: the plugins' openHistory asks, creates only on Start, and the owner still opens its own", async () => {
    const nodeFetch: FetchLike = (u, init) => fetch(u, { method: init.method, headers: init.headers, body: init.body });
    const as = (token: string) => createClient({ serverUrl: server.url, token, fetch: nodeFetch, transport: 'poll' });
    const key = 'figma-file-with-marker:page-1';
    const [alices, bobs] = [as(alice), as(bob)];
    const [aliceMe, bobMe] = [(await alices.me())!, (await bobs.me())!];
    // alice opens the file first: her workspace's history, and the marker her plugin writes into the file
    const first = await openHistory(alices, 'figma', key, null, aliceMe);
    expect(first).toMatchObject({ kind: 'opened', workspace: { name: 'studio-a' } });
    const inFile = encodeHistoryMarker((first as { marker: HistoryMarker }).marker);
    // bob opens the file she sent him: the marker (not the server) says whose it is; nothing is created
    const asked = await openHistory(bobs, 'figma', key, parseHistoryMarker(inFile), bobMe);
    expect(asked).toEqual({
      kind: 'elsewhere',
      recorded: { id: a.workspaceId, name: 'studio-a' },
      yours: { id: b.workspaceId, name: 'studio-b' },
      question: "This file's layerloop history belongs to workspace «studio-a» (recorded in the file), which you are not a member of. Start a new history in «studio-b»?",
    });
    expect((await call(server.url, bob, 'mutation', 'documents.open', { host: 'figma', hostDocumentKey: key, create: false })).status).toBe(404);
    // Start: a new, empty history in bob's workspace, and the marker rewritten to it
    const started = await openHistory(bobs, 'figma', key, parseHistoryMarker(inFile), bobMe, { startNew: true });
    expect(started).toMatchObject({ kind: 'opened', workspace: { id: b.workspaceId, name: 'studio-b' } });
    const bobsDoc = (started as { documentId: string }).documentId;
    expect(bobsDoc).not.toBe((first as { documentId: string }).documentId);
    expect(await bobs.history(bobsDoc)).toEqual([]);
    const rewritten = encodeHistoryMarker((started as { marker: HistoryMarker }).marker);
    expect(parseHistoryMarker(rewritten)).toEqual({ workspace: { id: b.workspaceId, name: 'studio-b' }, documentId: bobsDoc });
    // with bob's marker in the file, alice is not asked: her workspace has its history, and it opens
    expect(await openHistory(alices, 'figma', key, parseHistoryMarker(rewritten), aliceMe)).toMatchObject({ kind: 'opened', documentId: (first as { documentId: string }).documentId });
    // and bob, with the file marked as his, opens his own without a question
    expect(await openHistory(bobs, 'figma', key, parseHistoryMarker(rewritten), bobMe)).toMatchObject({ kind: 'opened', documentId: bobsDoc });
  });

  test('each sees its own: history with authors, its blobs, its jobs; an upload of the same bytes grants them', async () => {
    const history = data<{ nodes: { authorId: string }[] }>((await call(server.url, alice, 'query', 'documents.history', { documentId: a.documentId })).text);
    const aliceId = data<{ user: { id: string } }>((await call(server.url, alice, 'query', 'me', undefined)).text).user.id;
    expect(history.nodes.length).toBeGreaterThanOrEqual(2);
    expect(new Set(history.nodes.map((n) => n.authorId))).toEqual(new Set([aliceId]));
    expect((await fetch(`${server.url}/v1/blobs/${a.resultSha}`, { headers: { Authorization: `Bearer ${alice}` } })).status).toBe(200);
    // B uploads the very bytes A uploaded: now B has them too (it holds them), A's results stay A's
    expect((await fetch(`${server.url}/v1/blobs/${a.sourceSha}`, { headers: { Authorization: `Bearer ${bob}` } })).status).toBe(404);
    expect((await putBlob(server.url, bob, a.sourceBytes, '?width=64&height=64', 'application/octet-stream')).sha256).toBe(a.sourceSha);
    expect((await fetch(`${server.url}/v1/blobs/${a.sourceSha}`, { headers: { Authorization: `Bearer ${bob}` } })).status).toBe(200);
    expect((await fetch(`${server.url}/v1/blobs/${a.resultSha}`, { headers: { Authorization: `Bearer ${bob}` } })).status).toBe(404);
  });

  test('history names its authors: two members of a workspace on one document, nothing for the other workspace', async () => {
    const dana = (await usersCli(['add', 'dana', '--workspace', 'studio-a', '--data-dir', dataDir])).last;
    // the same file in the same workspace: dana continues alice's document
    const danas = await work(server.url, dana, a.hostKey, 3);
    expect(danas.documentId).toBe(a.documentId);
    const history = data<{ nodes: { id: string; authorId: string; authorName: string | null }[] }>((await call(server.url, dana, 'query', 'documents.history', { documentId: a.documentId })).text);
    const byEdit = (id: string) => history.nodes.find((n) => n.id === id)?.authorName;
    expect(byEdit(a.editId)).toBe('alice');
    expect(byEdit(danas.editId)).toBe('dana');
    expect(new Set(history.nodes.map((n) => n.authorName))).toEqual(new Set(['alice', 'dana']));
    // bob's own history names only bob; alice's is not his to read
    const bobs = data<{ nodes: { authorName: string | null }[] }>((await call(server.url, bob, 'query', 'documents.history', { documentId: b.documentId })).text);
    expect(new Set(bobs.nodes.map((n) => n.authorName))).toEqual(new Set(['bob']));
    const refused = await call(server.url, bob, 'query', 'documents.history', { documentId: a.documentId });
    expect(refused.status).toBe(404);
    expect(refused.text).not.toMatch(/alice|dana/);
  }, 120_000);

  test('models.list answers both alike; /metrics is for admins, and counts per workspace', async () => {
    const models = (token: string) => call(server.url, token, 'query', 'models.list', undefined).then((r) => r.text);
    expect(await models(bob)).toBe(await models(alice));
    const res = await fetch(`${server.url}/metrics`, { headers: { Authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(new RegExp(`layerloop_workspace_edits_total\\{workspace="${a.workspaceId}"\\} [1-9]`));
    expect(text).toMatch(new RegExp(`layerloop_workspace_edits_total\\{workspace="${b.workspaceId}"\\} [1-9]`));
  });

  test('log lines carry userId and workspaceId', () => {
    const lines = logLines(server.stderr()).filter((l) => l.msg === 'request' && l.route === '/trpc/edits.create');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.workspaceId === b.workspaceId && typeof l.userId === 'string')).toBe(true);
    const queued = logLines(server.stderr()).filter((l) => l.msg === 'edit queued');
    expect(queued.every((l) => typeof l.userId === 'string' && typeof l.workspaceId === 'string')).toBe(true);
  });

  describe('token lifecycle', () => {
    const store = () => ['--data-dir', dataDir];
    const me = (token: string) => call(server.url, token, 'query', 'me', undefined);

    test('a second token works; revoked, it is refused by the next request, the first still works', async () => {
      const second = (await usersCli(['tokens', 'create', 'alice', '--name', 'laptop', ...store()])).last;
      expect((await me(second)).status).toBe(200);
      const listed = (await usersCli(['tokens', 'list', 'alice', ...store()])).stdout;
      expect(listed).toMatch(/laptop/);
      expect(listed).not.toContain(second.slice(-43));
      await usersCli(['tokens', 'revoke', 'alice', 'laptop', ...store()]);
      const refused = await me(second);
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.text).error.message).toMatch(/not valid on this server \(unknown, revoked, or its user is disabled\)/);
      expect((await fetch(`${server.url}/v1/blobs/${a.sourceSha}`, { headers: { Authorization: `Bearer ${second}` } })).status).toBe(401);
      expect((await me(alice)).status).toBe(200);
    });

    test('a wrong secret and an unknown token id are refused alike (even on a token-less server)', async () => {
      const wrongSecret = `${alice.slice(0, -43)}${'A'.repeat(43)}`;
      const unknownId = `ll_00000000-0000-4000-8000-000000000009_${alice.slice(-43)}`;
      for (const token of [wrongSecret, unknownId]) {
        const answer = await me(token);
        expect(answer.status).toBe(401);
      }
      expect(JSON.parse((await me(wrongSecret)).text).error.message).toBe(JSON.parse((await me(unknownId)).text).error.message);
    });

    test('a disabled user is refused at once, and an open event stream ends within seconds', async () => {
      const carol = (await usersCli(['add', 'carol', '--workspace', 'studio-a', ...store()])).last;
      const job = data<{ jobId: string }>(
        (
          await call(server.url, carol, 'mutation', 'edits.create', {
            documentId: a.documentId,
            parent: { kind: 'source', imageSha256: a.sourceSha },
            regions: [{ instruction: 'make everything green', maskSha256: null }],
            options: { steps: 100, variations: 4, previewEvery: 0 },
          })
        ).text,
      );
      // carol is in studio-a: she sees and continues alice's document, and streams her job
      const started = Date.now();
      const stream = watchUntilEnd(server.url, carol, { jobId: job.jobId });
      await new Promise((r) => setTimeout(r, 500));
      await usersCli(['users', 'disable', 'carol', ...store()]);
      const disabledAt = Date.now();
      expect((await me(carol)).status).toBe(401);
      const ended = await stream;
      expect(ended.text).toMatch(/UNAUTHORIZED/);
      expect(ended.text).toMatch(/revoked or its user disabled/);
      expect(ended.endedAt - disabledAt).toBeLessThan(3000);
      expect(ended.endedAt).toBeGreaterThan(started);
      await usersCli(['users', 'enable', 'carol', ...store()]);
      expect((await me(carol)).status).toBe(200);
    }, 60_000);
  });
});

/** Reads a jobs.watch stream until the server ends it (or 20 s); when it ended. */
async function watchUntilEnd(url: string, token: string, input: unknown): Promise<{ text: string; endedAt: number }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 20_000);
  let text = '';
  try {
    const res = await fetch(`${url}/trpc/jobs.watch?input=${encodeURIComponent(JSON.stringify(input))}`, { headers: { Accept: 'text/event-stream', Authorization: `Bearer ${token}` }, signal: controller.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (/serialized-error/.test(text) && /\n\n$/.test(text)) break;
    }
  } catch {
    // aborted
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return { text, endedAt: Date.now() };
}

describe('the shared-token and token-less modes act as the default user; personal tokens beside them', () => {
  let dataDir: string;
  let server: ServerProcess;

  afterEach(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('--token: the shared token is the default user (admin of the default workspace); a personal token sees only its own', async () => {
    dataDir = tempDataDir();
    const dana = (await usersCli(['add', 'dana', '--workspace', 'studio-d', '--data-dir', dataDir])).last;
    server = await startServer({ dataDir, token: 'shared-secret-1' });
    const shared = data<{ user: { name: string; role: string }; via: string }>((await call(server.url, 'shared-secret-1', 'query', 'me', undefined)).text);
    expect(shared).toMatchObject({ user: { name: 'local', role: 'admin' }, via: 'shared-token' });
    const upload = await putBlob(server.url, 'shared-secret-1', PNG);
    expect(upload.status).toBe(201);
    expect((await fetch(`${server.url}/v1/blobs/${upload.sha256}`, { headers: { Authorization: `Bearer ${dana}` } })).status).toBe(404);
    expect((await call(server.url, 'wrong-token', 'query', 'me', undefined)).status).toBe(401);
    expect((await fetch(`${server.url}/trpc/me`)).status).toBe(401);
    // the default user is the server, not a person: its history entries name no author
    const mine = await work(server.url, 'shared-secret-1', 'shared-file', 1);
    const history = data<{ nodes: { authorName: string | null }[] }>((await call(server.url, 'shared-secret-1', 'query', 'documents.history', { documentId: mine.documentId })).text);
    expect(history.nodes.length).toBeGreaterThanOrEqual(2);
    expect(history.nodes.every((n) => n.authorName === null)).toBe(true);
  }, 60_000);

  test('no token on loopback: requests without one are the default user; a revoked personal token is still refused', async () => {
    dataDir = tempDataDir();
    const erin = (await usersCli(['add', 'erin', '--workspace', 'studio-e', '--data-dir', dataDir])).last;
    server = await startServer({ dataDir });
    const anonymous = data<{ user: { name: string }; via: string }>(await (await fetch(`${server.url}/trpc/me`)).text());
    expect(anonymous).toMatchObject({ user: { name: 'local' }, via: 'loopback' });
    expect(data<{ user: { name: string } }>((await call(server.url, erin, 'query', 'me', undefined)).text).user.name).toBe('erin');
    await usersCli(['tokens', 'revoke', 'erin', 'first', '--data-dir', dataDir]);
    expect((await call(server.url, erin, 'query', 'me', undefined)).status).toBe(401);
  });

  test('--users-only: no default user; per-user limits answer 429 and 507 with what to do', async () => {
    dataDir = tempDataDir();
    const fay = (await usersCli(['add', 'fay', '--workspace', 'studio-f', '--data-dir', dataDir])).last;
    server = await startServer({ dataDir, args: ['--users-only', '--max-queued-per-user', '1', '--max-stored-mib-per-user', '1'] });
    expect((await fetch(`${server.url}/trpc/me`)).status).toBe(401);
    const health = JSON.parse(await (await fetch(`${server.url}/trpc/health`)).text()).result.data;
    expect(health.authRequired).toBe(true);

    const source = await putBlob(server.url, fay, PNG);
    const documentId = data<{ documentId: string }>((await call(server.url, fay, 'mutation', 'documents.open', { host: 'web', hostDocumentKey: 'f' })).text).documentId;
    const edit = () =>
      call(server.url, fay, 'mutation', 'edits.create', {
        documentId,
        parent: { kind: 'source', imageSha256: source.sha256 },
        regions: [{ instruction: 'make everything purple', maskSha256: null }],
        options: { steps: 100, variations: 4, previewEvery: 0 },
      });
    expect((await edit()).status).toBe(200);
    const second = await fetch(`${server.url}/trpc/edits.create`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${fay}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ documentId, parent: { kind: 'source', imageSha256: source.sha256 }, regions: [{ instruction: 'x', maskSha256: null }] }),
    });
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('2');
    expect(((await second.json()) as { error: { message: string } }).error.message).toMatch(/you already have 1 edits queued or running \(at most 1 per user on this server\)/);

    // a 1 MiB quota: a 1.25 MiB raw RGBA upload does not fit
    const raw = new Uint8Array(640 * 512 * 4).fill(7);
    const big = await fetch(`${server.url}/v1/blobs?width=640&height=512`, { method: 'PUT', headers: { Authorization: `Bearer ${fay}`, 'Content-Type': 'application/octet-stream' }, body: raw });
    expect(big.status).toBe(507);
    expect(((await big.json()) as { error: string }).error).toMatch(/your storage quota is used up: you store 0 MiB of 1 MiB, and this needs 1\.3 MiB more/);
  }, 60_000);

  test('the storage quota holds at edits.create too: results and latents count, and a user over it gets the same 507', async () => {
    dataDir = tempDataDir();
    const gil = (await usersCli(['add', 'gil', '--workspace', 'studio-g', '--data-dir', dataDir])).last;
    server = await startServer({ dataDir, args: ['--max-stored-mib-per-user', '1'] });
    expectQuotaRefusal(await editPastQuota(server.url, gil));
    // nothing was queued: the workspace still holds one job
    expect((await usersCli(['workspaces', 'list', '--data-dir', dataDir])).stdout).toMatch(/studio-g\s+[0-9a-f-]{36}\s+1\s+1\s+1\s+/);
  }, 60_000);
});
