/**
 * S3BlobStore: the BlobStore on an S3-compatible bucket (`--blobs s3://bucket?endpoint=…`: AWS S3, MinIO,
 * Cloudflare R2…), through @aws-sdk/client-s3. One object per blob, keyed `PREFIX<sha256>`.
 *
 * Nothing read from the bucket is trusted: get() always rehashes what it downloads and throws
 * StoreError('corrupt') on a mismatch (the `verify` option is implied), and a put that finds the object already
 * there downloads and rehashes it before answering "already stored"; an object with other bytes under the name
 * (damage, a bad writer, a truncated copy) is overwritten with the right ones, which is the repair. Uploads carry
 * the sha256 as their S3 checksum, so a server that checks (AWS S3, MinIO) refuses bytes damaged on the way.
 *
 * Durability: S3 answers a PUT once the object is stored durably. A put with wait 'durable' resolves after that
 * answer. A put with wait 'readable' resolves once the write has begun (after a HEAD, which says whether the
 * object is there and so whether it is `created`): from then on this process serves the bytes from memory,
 * whenDurable() waits for the PUT, and a failed PUT makes whenDurable() reject (the edit store then refuses the
 * node that needs the blob). Other processes see the blob once the PUT is answered, not before, as with the
 * embedded store's files: a process that hands a blob to another must await whenDurable() first.
 */
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { sha256Hex } from './blobs';
import { PendingWrites } from './pending-writes';
import { type BlobPutOptions, type BlobPutResult, type BlobStat, type BlobStore, StoreError, assertSha256 } from './store';
import type { S3Location } from './urls';

export interface S3BlobStoreOptions {
  /** Credentials for tests; a server leaves this out and the AWS SDK finds them (environment, profile, role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Test seam: runs just before an object is uploaded; a throw here behaves like a failed upload. */
  beforePut?: (key: string) => Promise<void> | void;
}

/** A refusal to start: the bucket is missing, unreachable or not ours to write; `message` says what to fix. */
export class S3ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'S3ConfigError';
  }
}

/** What an S3 call failed with: the service's error code and HTTP status, or a network error's code. */
function failure(error: unknown): { status: number | null; code: string; message: string } {
  if (error instanceof S3ServiceException) return { status: error.$metadata.httpStatusCode ?? null, code: error.name, message: error.message };
  const e = error as { code?: string; name?: string; message?: string };
  return { status: null, code: e.code ?? e.name ?? 'Error', message: e.message ?? String(error) };
}

/** No such object (a missing bucket is a 404 too, but not an absent blob: that one is an error). */
const isNotFound = (error: unknown): boolean => failure(error).status === 404 && failure(error).code !== 'NoSuchBucket';

export class S3BlobStore implements BlobStore {
  private readonly pending = new PendingWrites();

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    readonly prefix: string,
    private readonly options: S3BlobStoreOptions = {},
  ) {}

  /** An S3 client for `location`: path-style addressing and region as the URL says, retries and timeouts bounded. */
  static client(location: S3Location, options: S3BlobStoreOptions = {}): S3Client {
    return new S3Client({
      ...(location.endpoint !== null ? { endpoint: location.endpoint } : {}),
      ...(location.region !== null ? { region: location.region } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      forcePathStyle: location.forcePathStyle,
      maxAttempts: 3,
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
      // S3-compatible servers differ in which checksum headers they accept; the store sends (and checks) sha256 itself
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  /**
   * Opens the bucket and proves it usable: it exists and answers, and this process may write and read it (it
   * uploads the empty blob, content like any other, and reads it back). Throws S3ConfigError saying what to fix.
   */
  static async open(location: S3Location, options: S3BlobStoreOptions = {}): Promise<S3BlobStore> {
    const client = S3BlobStore.client(location, options);
    const store = new S3BlobStore(client, location.bucket, location.prefix, options);
    const where = `bucket ${JSON.stringify(location.bucket)} at ${location.endpoint ?? 'AWS S3'}`;
    try {
      await client.send(new HeadBucketCommand({ Bucket: location.bucket }));
      const empty = new Uint8Array(0);
      const sha256 = sha256Hex(empty);
      await store.write(store.keyFor(sha256), sha256, empty, false); // written even when there: that proves the right to write
      await store.get(sha256);
    } catch (error) {
      client.destroy();
      throw new S3ConfigError(explainOpenFailure(error, where, location));
    }
    return store;
  }

  /** The object key of a blob. Validates first: this is the only place a hash becomes a key. */
  keyFor(sha256: string): string {
    assertSha256(sha256);
    return `${this.prefix}${sha256}`;
  }

  async put(bytes: Uint8Array, options: BlobPutOptions = {}): Promise<BlobPutResult> {
    if (!(bytes instanceof Uint8Array)) {
      throw new StoreError('invalid_input', `blob put: expected a Uint8Array, got ${describe(bytes)}`);
    }
    const sha256 = sha256Hex(bytes);
    const key = this.keyFor(sha256);
    const size = bytes.byteLength;
    const readable = options.wait === 'readable';

    const inFlight = this.pending.inFlight(sha256);
    if (inFlight) {
      if (!readable) await inFlight;
      return { sha256, size, created: false };
    }
    const start = (own: Uint8Array, checkFirst: boolean) =>
      this.pending.inFlight(sha256) ?? this.pending.start(sha256, own, () => this.write(key, sha256, own, checkFirst)); // a put may have begun meanwhile
    let created = true;
    if (readable) {
      // One round trip before answering, so `created` is true to what is stored; the check of an existing
      // object's bytes (and its repair) happens in the write, which whenDurable() waits for.
      const existing = await this.headSize(key);
      created = existing !== size;
      void start(new Uint8Array(bytes), existing === size); // a copy: the caller may reuse its buffer once this returns
    } else {
      if (await this.holdsIntact(key, sha256)) {
        this.pending.stored(sha256);
        return { sha256, size, created: false };
      }
      await start(bytes, false);
    }
    // Two concurrent puts of the same new bytes may both report created: true; both stored identical content.
    return { sha256, size, created };
  }

  async whenDurable(sha256: string): Promise<void> {
    assertSha256(sha256);
    await this.pending.whenDurable(sha256);
  }

  async flush(): Promise<void> {
    await this.pending.flush();
  }

  /** Always verified (see the file comment); `verify` is accepted for the interface's sake. */
  async get(sha256: string, _options: { verify?: boolean } = {}): Promise<Uint8Array | null> {
    const key = this.keyFor(sha256);
    const inFlight = this.pending.bytes(sha256);
    if (inFlight) return new Uint8Array(inFlight);
    const bytes = await this.download(key);
    if (bytes === null) return null;
    const actual = sha256Hex(bytes);
    if (actual !== sha256) throw new StoreError('corrupt', `blob ${sha256} is corrupt: its ${bytes.byteLength} bytes hash to ${actual}`);
    return bytes;
  }

  async has(sha256: string): Promise<boolean> {
    const key = this.keyFor(sha256);
    return this.pending.bytes(sha256) !== undefined || (await this.headSize(key)) !== null;
  }

  async stat(sha256: string): Promise<BlobStat | null> {
    const key = this.keyFor(sha256);
    const inFlight = this.pending.bytes(sha256);
    if (inFlight) return { sha256, size: inFlight.byteLength };
    const size = await this.headSize(key);
    return size === null ? null : { sha256, size };
  }

  /** Lets go of the client's connections. */
  destroy(): void {
    this.client.destroy();
  }

  // -- internals

  /** Uploads the blob, unless `checkFirst` and the object already there has the right bytes. */
  private async write(key: string, sha256: string, bytes: Uint8Array, checkFirst: boolean): Promise<void> {
    if (checkFirst && (await this.holdsIntact(key, sha256))) return;
    await this.options.beforePut?.(key);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentType: 'application/octet-stream',
          ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
        }),
      );
    } catch (error) {
      throw this.wrap('upload', key, error);
    }
  }

  /** Whether the object exists and its bytes hash to its name. */
  private async holdsIntact(key: string, sha256: string): Promise<boolean> {
    const bytes = await this.download(key);
    return bytes !== null && sha256Hex(bytes) === sha256;
  }

  private async download(key: string): Promise<Uint8Array | null> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!object.Body) return new Uint8Array(0);
      return await object.Body.transformToByteArray();
    } catch (error) {
      if (isNotFound(error)) return null;
      throw this.wrap('download', key, error);
    }
  }

  /** The object's size, or null when there is none. */
  private async headSize(key: string): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw this.wrap('look up', key, error);
    }
  }

  private wrap(action: string, key: string, error: unknown): Error {
    const { status, code, message } = failure(error);
    return new Error(`could not ${action} s3://${this.bucket}/${key}: ${code}${status !== null ? ` (HTTP ${status})` : ''}: ${message}`, { cause: error });
  }
}

function explainOpenFailure(error: unknown, where: string, location: S3Location): string {
  const { status, code, message } = failure(error instanceof Error && error.cause !== undefined ? error.cause : error);
  const fix = '(--blobs, LAYERLOOP_BLOBS)';
  if (code === 'CredentialsProviderError' || /credential/i.test(message)) {
    return `no S3 credentials for ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) (${message})`;
  }
  if (status === 404 || code === 'NoSuchBucket') {
    const mb = `aws s3 mb s3://${location.bucket}${location.endpoint ? ` --endpoint-url ${location.endpoint}` : ''}`;
    return `${where} does not exist: create it (for example: ${mb}) or fix the bucket name ${fix}`;
  }
  if (status === 403 || code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'AccessDenied') {
    return `${where} refused access (${code}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and that they may read and write the bucket`;
  }
  if (status === 301 || code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed') {
    return `${where} is in another region (${code}): set ?region=… in the URL ${fix}`;
  }
  if (status === null) {
    return `cannot reach ${where} (${code}: ${message}): check ?endpoint= ${fix} and that the server is running`;
  }
  return `${where} cannot be used: ${code} (HTTP ${status}): ${message}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value as object).constructor?.name ?? 'object';
}
