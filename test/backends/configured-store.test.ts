/**
 * openConfiguredStore (what `--store` / `--blobs` select) opens each half on its own: PostgreSQL with blobs in the
 * data directory, SQLite with blobs in a bucket, and both team backends; each works and says where it lives.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openConfiguredStore } from '../../server/store';
import { parseBlobsUrl, parseStoreUrl } from '../../server/store/urls';
import { describeWithServices } from '../support/services';
import { bytesOf, sha256Of } from '../unit/store/contract';

describeWithServices('openConfiguredStore', ['postgres', 's3'], (services) => {
  let dataDir: string;
  let savedEnv: NodeJS.ProcessEnv;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-configured-'));
    // the server's S3 client finds its credentials where the AWS SDK looks: the environment
    savedEnv = { ...process.env };
    Object.assign(process.env, services().s3.env());
  });
  afterEach(() => {
    process.env = savedEnv;
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Stores a source node over a blob, reads both back, and closes. */
  async function roundTrip(store: Awaited<ReturnType<typeof openConfiguredStore>>): Promise<void> {
    try {
      const { sha256 } = await store.blobs.put(bytesOf(1), { wait: 'readable' });
      const { documentId } = await store.edits.openDocument('cli', 'configured');
      const node = await store.edits.addSourceNode({ documentId, imageSha256: sha256 });
      expect((await store.edits.history(documentId))?.nodes).toEqual([node]);
      expect(await store.blobs.get(sha256)).toEqual(bytesOf(1));
      expect(await store.removeTempFiles()).toBe(0);
    } finally {
      await store.close();
    }
  }

  test('PostgreSQL with blobs in the data directory', async () => {
    const url = await services().postgres.createDatabase();
    const store = await openConfiguredStore({ dataDir, store: parseStoreUrl(url), blobs: null });
    expect(store.location).toEqual({ edits: url, blobs: path.join(dataDir, 'blobs') });
    await roundTrip(store);
    expect(fs.readdirSync(dataDir)).toEqual(['blobs']); // no SQLite file
    expect(fs.existsSync(path.join(dataDir, 'blobs', sha256Of(bytesOf(1)).slice(0, 2)))).toBe(true);
  });

  test('SQLite with blobs in a bucket', async () => {
    const bucket = await services().s3.createBucket();
    const store = await openConfiguredStore({ dataDir, store: null, blobs: parseBlobsUrl(services().s3.blobsUrl(bucket)) });
    expect(store.location).toEqual({ edits: path.join(dataDir, 'layerloop.sqlite'), blobs: `s3://${bucket}/ at ${services().s3.endpoint}` });
    await roundTrip(store);
    expect(fs.readdirSync(dataDir).filter((name) => !name.startsWith('layerloop.sqlite'))).toEqual([]); // no blobs directory
  });

  test('both team backends; a password never reaches the location', async () => {
    const url = new URL(await services().postgres.createDatabase());
    const store = await openConfiguredStore({ dataDir, store: parseStoreUrl(url.toString()), blobs: parseBlobsUrl(services().s3.blobsUrl(await services().s3.createBucket(), 'p')) });
    await roundTrip(store);
    expect(fs.readdirSync(dataDir)).toEqual([]);
    // (the test cluster trusts loopback, so a password in the URL is accepted and ignored)
    url.password = 'hunter2-secret';
    const withPassword = await openConfiguredStore({ dataDir, store: parseStoreUrl(url.toString()), blobs: null });
    expect(withPassword.location.edits).toBe(url.toString().replace('hunter2-secret', '***'));
    await withPassword.close();
  });
});
