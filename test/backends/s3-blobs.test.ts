/**
 * S3BlobStore against a real S3 API (s3rver, or LAYERLOOP_TEST_S3_ENDPOINT; test/support/services.ts): the
 * BlobStore contract, then what is S3's own: the key layout, the check of an object that is already there, a
 * bucket that fails while the store runs (and comes back), and start-up errors that say what to fix.
 */
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { S3BlobStore, S3ConfigError, type S3BlobStoreOptions } from '../../server/store/s3';
import { parseBlobsUrl } from '../../server/store/urls';
import { describeWithServices } from '../support/services';
import { blobStoreContract, bytesOf, expectStoreError, sha256Of, writeGate } from '../unit/store/contract';

describeWithServices('S3BlobStore', ['s3'], (services) => {
  /** every store a test made, let go of after it */
  const made: S3BlobStore[] = [];
  afterEach(() => {
    for (const store of made.splice(0)) store.destroy();
  });

  function storeIn(bucket: string, prefix = '', options: S3BlobStoreOptions = {}): S3BlobStore {
    const s3 = services().s3;
    const location = parseBlobsUrl(s3.blobsUrl(bucket, prefix));
    const store = new S3BlobStore(S3BlobStore.client(location, { credentials: s3.credentials }), location.bucket, location.prefix, options);
    made.push(store);
    return store;
  }

  /** Writes `bytes` under a blob's key, as a bad writer (or damage) would. */
  async function overwrite(bucket: string, key: string, bytes: Uint8Array): Promise<void> {
    const client = services().s3.client();
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    } finally {
      client.destroy();
    }
  }

  async function keysIn(bucket: string): Promise<string[]> {
    const client = services().s3.client();
    try {
      return ((await client.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!).sort();
    } finally {
      client.destroy();
    }
  }

  describe('BlobStore contract', () => {
    blobStoreContract(async () => {
      const bucket = await services().s3.createBucket();
      const prefix = 'blobs/';
      return {
        blobs: storeIn(bucket, prefix),
        reopen: () => storeIn(bucket, prefix),
        gated: (fail) => {
          const { hold, release, writing } = writeGate(fail);
          return { blobs: storeIn(bucket, prefix, { beforePut: hold }), release, writing };
        },
        damage: (sha256, bytes) => overwrite(bucket, `${prefix}${sha256}`, bytes),
        unusable: async () => storeIn(`${bucket}-gone`, prefix),
      };
    });
  });

  test('one object per blob, keyed PREFIX<sha256>; nothing else is written', async () => {
    const bucket = await services().s3.createBucket();
    const blobs = storeIn(bucket, 'team/blobs');
    const a = await blobs.put(bytesOf(1));
    const b = await blobs.put(bytesOf(2), { wait: 'readable' });
    await blobs.put(bytesOf(1));
    await blobs.flush();
    expect(await keysIn(bucket)).toEqual([`team/blobs/${a.sha256}`, `team/blobs/${b.sha256}`].sort());
    expect(blobs.keyFor(a.sha256)).toBe(`team/blobs/${a.sha256}`);
    expect(() => blobs.keyFor('../x')).toThrow(/sha256 of 64 lowercase hex/);
  });

  test('a bucket that fails while the server runs: errors in words for users (the detail in their cause), health says so until a write works again', async () => {
    const s3 = services().s3;
    const bucket = `${await s3.createBucket()}-later`; // not there yet, as if removed under a running server
    let hold: Promise<void> | undefined = undefined; // set: every write from then on waits for ever
    const blobs = storeIn(bucket, '', { beforePut: () => hold });
    const missing = 'the server cannot use its blob storage right now: its bucket does not exist';
    const refused = await expectStoreError(blobs.put(bytesOf(50)), 'unavailable', new RegExp(`^${missing}$`));
    expect((refused.cause as Error).message).toMatch(new RegExp(`^could not download s3://${bucket}/[0-9a-f]{64}: NoSuchBucket \\(HTTP 404\\)`)); // for the log
    expect(await blobs.health()).toEqual({ writable: false, problems: [`blob writes fail: ${missing}`] });
    // meanwhile a 'readable' put waits for its write and hears the failure, instead of answering early
    await expectStoreError(blobs.put(bytesOf(51), { wait: 'readable' }), 'unavailable', new RegExp(`^${missing}$`));
    await expectStoreError(blobs.get(sha256Of(bytesOf(51))), 'unavailable', new RegExp(`^${missing}$`));

    // the operator makes the bucket: health's own write finds it working, and puts answer early again
    const admin = s3.client();
    try {
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    } finally {
      admin.destroy();
    }
    expect(await blobs.health()).toEqual({ writable: true, problems: [] });
    hold = new Promise<void>(() => {});
    expect(await blobs.put(bytesOf(51), { wait: 'readable' })).toEqual({ sha256: sha256Of(bytesOf(51)), size: 257, created: true }); // its write still held
  });

  test('an endpoint nobody answers at while running: unavailable, "it cannot be reached"', async () => {
    const location = parseBlobsUrl('s3://some-bucket?endpoint=http://127.0.0.1:1');
    const blobs = new S3BlobStore(S3BlobStore.client(location, { credentials: services().s3.credentials }), location.bucket, location.prefix);
    made.push(blobs);
    const unreachable = /^the server cannot use its blob storage right now: it cannot be reached$/;
    await expectStoreError(blobs.has(sha256Of(bytesOf(52))), 'unavailable', unreachable);
    const health = await blobs.health();
    expect(health).toEqual({ writable: false, problems: [expect.stringMatching(/^blob writes fail: the server cannot use its blob storage right now: it cannot be reached$/)] });
  });

  test("a put that finds damaged bytes of the right length repairs them ('durable' at once, 'readable' before whenDurable resolves)", async () => {
    const bucket = await services().s3.createBucket();
    const blobs = storeIn(bucket);
    for (const [seed, wait] of [
      [4, 'durable'],
      [5, 'readable'],
    ] as const) {
      const sha256 = sha256Of(bytesOf(seed));
      const damaged = bytesOf(seed);
      damaged[200] ^= 0x01;
      await overwrite(bucket, sha256, damaged);
      const put = await blobs.put(bytesOf(seed), { wait });
      // a durable put looked at the bytes before answering; a readable one only saw an object of the right size
      expect(put).toEqual({ sha256, size: 257, created: wait === 'durable' });
      await blobs.whenDurable(sha256);
      expect(await storeIn(bucket).get(sha256)).toEqual(bytesOf(seed));
    }
  });

  test('an intact object is not uploaded again', async () => {
    const bucket = await services().s3.createBucket();
    let uploads = 0;
    const blobs = storeIn(bucket, '', { beforePut: () => void uploads++ });
    await blobs.put(bytesOf(6));
    expect(uploads).toBe(1);
    expect(await storeIn(bucket, '', { beforePut: () => void uploads++ }).put(bytesOf(6))).toMatchObject({ created: false });
    const readable = storeIn(bucket, '', { beforePut: () => void uploads++ });
    expect(await readable.put(bytesOf(6), { wait: 'readable' })).toMatchObject({ created: false });
    await readable.flush();
    expect(uploads).toBe(1);
  });

  describe('open() proves the bucket usable, or says what to fix', () => {
    const open = async (url: string, credentials = services().s3.credentials) => {
      const store = await S3BlobStore.open(parseBlobsUrl(url), { credentials });
      made.push(store);
      return store;
    };
    const openError = (url: string, credentials?: { accessKeyId: string; secretAccessKey: string }): Promise<Error> =>
      open(url, credentials).then(
        () => new Error('it opened'),
        (error: Error) => error,
      );

    test('a usable bucket opens, and holds the empty blob it wrote to prove it', async () => {
      const s3 = services().s3;
      const bucket = await s3.createBucket();
      const blobs = await open(s3.blobsUrl(bucket, 'p/'));
      expect(await keysIn(bucket)).toEqual(['p/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']);
      expect(await blobs.get('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')).toEqual(new Uint8Array(0));
    });

    test('a missing bucket', async () => {
      const s3 = services().s3;
      const error = await openError(s3.blobsUrl('no-such-bucket-here'));
      expect(error).toBeInstanceOf(S3ConfigError);
      expect(error.message).toBe(
        `bucket "no-such-bucket-here" at ${s3.endpoint} does not exist: create it (for example: aws s3 mb s3://no-such-bucket-here --endpoint-url ${s3.endpoint}) or fix the bucket name (--blobs, LAYERLOOP_BLOBS)`,
      );
    });

    test('wrong credentials', async () => {
      const s3 = services().s3;
      const error = await openError(s3.blobsUrl(await s3.createBucket()), { accessKeyId: 'WRONG', secretAccessKey: 'WRONG-SECRET' });
      expect(error).toBeInstanceOf(S3ConfigError);
      expect(error.message).toMatch(/refused access \(.*\): check AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY and that they may read and write the bucket/);
    });

    test('an endpoint nobody answers at', async () => {
      const error = await openError('s3://some-bucket?endpoint=http://127.0.0.1:1');
      expect(error).toBeInstanceOf(S3ConfigError);
      // (in Jest the SDK wraps node's error, which comes from another realm: the code is only in the message here)
      expect(error.message).toMatch(/^cannot reach bucket "some-bucket" at http:\/\/127\.0\.0\.1:1 \(.*ECONNREFUSED.*\): check \?endpoint= \(--blobs, LAYERLOOP_BLOBS\) and that the server is running$/);
    });
  });
});
