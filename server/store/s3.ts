/**
 * S3BlobStore: the BlobStore on an S3-compatible bucket (`--blobs s3://bucket?endpoint=…`: AWS S3, MinIO,
 * Cloudflare R2…), through @aws-sdk/client-s3. One object per blob, keyed `PREFIX<sha256>`.
 *
 * Nothing read from the bucket is trusted: get() always rehashes what it downloads and throws
 * StoreError('corrupt') on a mismatch, and a put that finds the object already
 * there downloads and rehashes it before answering "already stored"; an object with other bytes under the name
 * (damage, a bad writer, a truncated copy) is overwritten with the right ones, which is the repair. Uploads carry
 * the sha256 as their S3 checksum, so a server that checks (AWS S3, MinIO) refuses bytes damaged on the way.
 *
 * Durability: S3 answers a PUT once the object is stored durably. A put with wait 'durable' resolves after that
 * answer. A put with wait 'readable' resolves once the write has begun (after a HEAD, which says whether the
 * object is there and so whether it is `created`): from then on this process serves the bytes from memory,
 * whenDurable() waits for the PUT, and a failed PUT makes whenDurable() reject (the edit store then refuses the
 * node that needs the blob). Other processes see the blob once the PUT is answered, not before, as with the
 * embedded store's files: a process that hands a blob to another must await whenDurable() first. A 'readable' put
 * answers early only while the bucket works: after a failure, until a write works again, it waits for its PUT.
 *
 * Failures: a call the bucket refuses or that cannot reach it throws StoreError 'unavailable' (or 'full' where the
 * server says it is out of space), in words for users; the bucket, key and S3's answer are its `cause`, for the
 * log. The last failure is reported by health() until a write works; health() tries one then (the empty blob).
 */
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { sha256Hex, verifiedBlob } from './blobs';
import { PendingWrites } from './pending-writes';
import { type BlobPutOptions, type BlobPutResult, type BlobStat, type BlobStore, StoreError, type StoreHealth, assertSha256 } from './store';
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

/** How long health() waits for the write that tells whether a failed bucket works again. */
const PROBE_TIMEOUT_MS = 3_000;

/**
 * What a failed S3 call means for users: 'full' or 'unavailable', in words without the bucket's address
 * (`detail`, its cause, says where and what S3 answered, for the log).
 */
function bucketFailure(error: unknown, detail: Error): StoreError {
  const { status, code } = failure(error);
  if (/StorageFull|QuotaExceeded/i.test(code)) return new StoreError('full', `the server's blob storage is full`, { cause: detail });
  const why =
    status === null
      ? 'it cannot be reached'
      : code === 'NoSuchBucket'
        ? 'its bucket does not exist'
        : status === 401 || status === 403
          ? `it refuses the server's credentials (${code})`
          : `it answers ${code} (HTTP ${status})`;
  return new StoreError('unavailable', `the server cannot use its blob storage right now: ${why}`, { cause: detail });
}

export class S3BlobStore implements BlobStore {
  private readonly pending = new PendingWrites();
  /** the last failure of the bucket, until a write works: reported by health(), and no early answers meanwhile */
  private lastFailure: StoreError | null = null;
  /** health()'s write in flight, shared by concurrent calls */
  private probing: Promise<void> | null = null;

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
      await store.upload(store.keyFor(sha256), sha256, empty); // written even when there: that proves the right to write
      await store.get(sha256);
    } catch (error) {
      client.destroy();
      throw new S3ConfigError(explainOpenFailure(error instanceof StoreError && error.cause !== undefined ? error.cause : error, where, location));
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

    const inFlight = this.pending.get(sha256);
    if (inFlight) {
      // joining a write in flight: answer as early as it did
      if (!(readable && inFlight.early)) await inFlight.done;
      return { sha256, size, created: false };
    }
    const start = (own: Uint8Array, early: boolean, checkFirst: boolean) =>
      this.pending.get(sha256)?.done ?? this.pending.start(sha256, own, early, () => this.write(key, sha256, own, checkFirst)); // a put may have begun meanwhile
    if (readable && this.lastFailure === null) {
      // One round trip before answering, so `created` is true to what is stored; the check of an existing
      // object's bytes (and its repair) happens in the write, which whenDurable() waits for.
      const existing = await this.headSize(key);
      void start(new Uint8Array(bytes), true, existing === size); // a copy: the caller may reuse its buffer once this returns
      return { sha256, size, created: existing !== size };
    }
    if (await this.holdsIntact(key, sha256)) {
      this.pending.stored(sha256);
      return { sha256, size, created: false };
    }
    await start(bytes, false, false);
    // Two concurrent puts of the same new bytes may both report created: true; both stored identical content.
    return { sha256, size, created: true };
  }

  async whenDurable(sha256: string): Promise<void> {
    assertSha256(sha256);
    await this.pending.whenDurable(sha256);
  }

  async flush(): Promise<void> {
    await this.pending.flush();
  }

  /** Always verified (see the file comment). */
  async get(sha256: string): Promise<Uint8Array | null> {
    const key = this.keyFor(sha256);
    const inFlight = this.pending.get(sha256);
    if (inFlight) return new Uint8Array(inFlight.bytes);
    const bytes = await this.download(key);
    return bytes === null ? null : verifiedBlob(sha256, bytes);
  }

  async has(sha256: string): Promise<boolean> {
    const key = this.keyFor(sha256);
    return this.pending.get(sha256) !== undefined || (await this.headSize(key)) !== null;
  }

  async stat(sha256: string): Promise<BlobStat | null> {
    const key = this.keyFor(sha256);
    const inFlight = this.pending.get(sha256);
    if (inFlight) return { sha256, size: inFlight.bytes.byteLength };
    const size = await this.headSize(key);
    return size === null ? null : { sha256, size };
  }

  async health(): Promise<StoreHealth> {
    // a failure is reported until a write works: try one (the empty blob, as open() does), briefly
    if (this.lastFailure) await this.probe();
    return this.lastFailure ? { writable: false, problems: [`blob writes fail: ${this.lastFailure.message}`] } : { writable: true, problems: [] };
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
    await this.upload(key, sha256, bytes);
  }

  /** One PUT of the object; it working clears the last failure. */
  private async upload(key: string, sha256: string, bytes: Uint8Array, abortSignal?: AbortSignal): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentType: 'application/octet-stream',
          ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
        }),
        { abortSignal },
      );
    } catch (error) {
      throw this.failed('upload', key, error);
    }
    this.lastFailure = null;
  }

  /** health()'s check of a failed bucket: one write of the empty blob, shared by concurrent calls, bounded in time. */
  private probe(): Promise<void> {
    const empty = new Uint8Array(0);
    const sha256 = sha256Hex(empty);
    this.probing ??= this.upload(this.keyFor(sha256), sha256, empty, AbortSignal.timeout(PROBE_TIMEOUT_MS))
      .catch(() => {}) // still failing: this.lastFailure says how
      .finally(() => (this.probing = null));
    return this.probing;
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
      throw this.failed('download', key, error);
    }
  }

  /** The object's size, or null when there is none. */
  private async headSize(key: string): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (error) {
      if (isNotFound(error)) return null;
      throw this.failed('look up', key, error);
    }
  }

  /** A failed call as the StoreError users read (bucketFailure), remembered for health(); its cause says where, for the log. */
  private failed(action: string, key: string, error: unknown): StoreError {
    const { status, code, message } = failure(error);
    const detail = new Error(`could not ${action} s3://${this.bucket}/${key}: ${code}${status !== null ? ` (HTTP ${status})` : ''}: ${message}`, { cause: error });
    this.lastFailure = bucketFailure(error, detail);
    return this.lastFailure;
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
