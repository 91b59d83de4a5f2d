/**
 * Fair share across users on the real server (default --max-queue): while two users have work, each holds one
 * waiting job in the queue and the admission room takes turns over users, so a user who spreads many edits over
 * many documents cannot push another user's next edit behind all of them.
 */
import * as fs from 'node:fs';
import { tenantImage, usersCli } from '../support/isolation';
import { startServer, tempDataDir, type ServerProcess } from '../support/server';

type Data<T> = { result: { data: T } };

describe('fair share across users', () => {
  let dataDir: string;
  let server: ServerProcess;

  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test("a user's next edit starts before the third of another user's four queued at once", async () => {
    dataDir = tempDataDir();
    const heavy = (await usersCli(['add', 'heavy', '--workspace', 'h', '--data-dir', dataDir])).last;
    const light = (await usersCli(['add', 'light', '--workspace', 'l', '--data-dir', dataDir])).last;
    server = await startServer({ dataDir, args: ['--users-only'] });
    const post = async <T>(token: string, procedure: string, input: unknown): Promise<T> => {
      const res = await fetch(`${server.url}/trpc/${procedure}`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify(input) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${procedure}: ${res.status} ${text}`);
      return (JSON.parse(text) as Data<T>).result.data;
    };
    const snapshot = async (token: string, jobId: string) => {
      const res = await fetch(`${server.url}/trpc/jobs.get?input=${encodeURIComponent(JSON.stringify({ jobId }))}`, { headers: { Authorization: `Bearer ${token}` } });
      return (JSON.parse(await res.text()) as Data<{ state: string; startedAt: number | null; error: string | null }>).result.data;
    };
    const until = async (token: string, jobId: string, done: (s: { state: string }) => boolean) => {
      for (let i = 0; i < 2400; i++) {
        const s = await snapshot(token, jobId);
        if (done(s)) return s;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`job ${jobId} did not get there`);
    };
    const setup = async (token: string, key: string, seed: number) => {
      const res = await fetch(`${server.url}/v1/blobs?width=64&height=64`, { method: 'PUT', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream' }, body: tenantImage(seed) });
      const { sha256 } = (await res.json()) as { sha256: string };
      const { documentId } = await post<{ documentId: string }>(token, 'documents.open', { host: 'web', hostDocumentKey: key });
      return (steps: number, variations = 1) =>
        post<{ jobId: string }>(token, 'edits.create', { documentId, parent: { kind: 'source', imageSha256: sha256 }, regions: [{ instruction: 'make it blue', maskSha256: null }], options: { steps, variations, previewEvery: 0 } }).then((r) => r.jobId);
    };
    const heavyDocs = await Promise.all([0, 1, 2, 3, 4].map((i) => setup(heavy, `h-${i}`, 10 + i)));
    const lightDoc = await setup(light, 'l-0', 20);

    const long = await heavyDocs[0](60, 4); // keeps the engine busy while the others line up
    await until(heavy, long, (s) => s.state === 'running');
    const l1 = await lightDoc(2);
    const h = [1, 2, 3, 4].map((i) => heavyDocs[i](2)); // H1 enters the queue; H2..H4 wait their turn
    await until(light, l1, (s) => s.state === 'succeeded');
    const l2 = await lightDoc(2); // light's next edit, the moment its last one finished
    const heavyJobs = await Promise.all(h);
    const starts = async (token: string, id: string) => (await until(token, id, (s) => s.state === 'succeeded' || s.state === 'failed')).startedAt!;
    const light2 = await starts(light, l2);
    const heavyStarts = await Promise.all(heavyJobs.map((id) => starts(heavy, id)));
    // round-robin over users: H1, (L1 before it), H2, then L2, then H3 and H4
    expect(light2).toBeLessThan(heavyStarts[2]);
    expect(light2).toBeLessThan(heavyStarts[3]);
  }, 120_000);
});
