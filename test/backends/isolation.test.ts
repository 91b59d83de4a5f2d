/**
 * The cross-tenant probe (test/support/isolation.ts) on the team server's backends: PostgreSQL for the store and
 * S3 for blobs, users and tokens made with the admin CLI against the same database (`--store postgres://…`).
 * The embedded store runs the same probe in test/integration/isolation.test.ts.
 */
import * as fs from 'node:fs';
import { Client as PgClient } from 'pg';
import { call, editPastQuota, expectQuotaRefusal, probeCases, runProbe, usersCli, work } from '../support/isolation';
import { startServer, tempDataDir, type ServerProcess } from '../support/server';
import { describeWithServices } from '../support/services';

describeWithServices('isolation between workspaces on PostgreSQL and S3', ['postgres', 's3'], (services) => {
  let dataDir: string;
  let server: ServerProcess;
  let storeUrl: string;

  beforeAll(async () => {
    dataDir = tempDataDir();
    storeUrl = await services().postgres.createDatabase();
  });
  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('every question about the other workspace is answered as for something unknown; revocation holds at once', async () => {
    const alice = (await usersCli(['add', 'alice', '--workspace', 'studio-a', '--store', storeUrl])).last;
    const bob = (await usersCli(['add', 'bob', '--workspace', 'studio-b', '--store', storeUrl])).last;
    const blobsUrl = services().s3.blobsUrl(await services().s3.createBucket(), 'layerloop/');
    server = await startServer({ dataDir, args: ['--store', storeUrl, '--blobs', blobsUrl, '--users-only'], env: services().s3.env() });
    const a = await work(server.url, alice, 'figma-shared:page-1', 1);
    const b = await work(server.url, bob, 'figma-b:page-1', 2);
    const running = JSON.parse(
      (
        await call(server.url, alice, 'mutation', 'edits.create', {
          documentId: a.documentId,
          parent: { kind: 'source', imageSha256: a.sourceSha },
          regions: [{ instruction: 'make everything purple', maskSha256: null }],
          options: { steps: 100, variations: 4, previewEvery: 0 },
        })
      ).text,
    ).result.data as { jobId: string };
    const cases = probeCases(server.url, a, b, running);
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect((await runProbe(cases, a)).failures).toEqual([]);

    // the rows say who owns what
    const client = new PgClient({ connectionString: storeUrl });
    await client.connect();
    try {
      const owners = (await client.query('SELECT DISTINCT d.workspace_id, j.user_id FROM jobs j JOIN documents d ON d.id = j.document_id WHERE j.id = $1', [a.jobId])).rows;
      expect(owners).toEqual([{ workspace_id: a.workspaceId, user_id: expect.any(String) }]);
      expect((await client.query(`SELECT hash FROM tokens WHERE hash NOT LIKE 'scrypt$%'`)).rows).toEqual([]);
    } finally {
      await client.end();
    }

    // revoked from the CLI while the server runs: refused by the next request
    await usersCli(['tokens', 'revoke', 'bob', 'first', '--store', storeUrl]);
    expect((await call(server.url, bob, 'query', 'me', undefined)).status).toBe(401);
    expect((await call(server.url, alice, 'query', 'me', undefined)).status).toBe(200);
  }, 240_000);

  test('the storage quota at edits.create counts results and latents stored in PostgreSQL and S3', async () => {
    await server?.stop();
    const quotaStore = await services().postgres.createDatabase();
    const gil = (await usersCli(['add', 'gil', '--workspace', 'studio-g', '--store', quotaStore])).last;
    const blobsUrl = services().s3.blobsUrl(await services().s3.createBucket(), 'layerloop/');
    server = await startServer({ dataDir, args: ['--store', quotaStore, '--blobs', blobsUrl, '--max-stored-mib-per-user', '1'], env: services().s3.env() });
    expectQuotaRefusal(await editPastQuota(server.url, gil));
  }, 120_000);
});
