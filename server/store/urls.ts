/**
 * The store's backend URLs (`--store`, `--blobs`), parsed without loading any backend: config.ts checks them at
 * start-up and index.ts opens what they name.
 *
 *   --store postgres://USER:PASSWORD@HOST:PORT/DATABASE[?sslmode=…]   (postgresql:// too; libpq's URL form)
 *   --blobs s3://BUCKET[/PREFIX][?endpoint=URL][&region=R][&path-style=true|false]
 *
 * S3 credentials never go in the URL (it is logged): the AWS SDK's usual sources supply them
 * (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the machine's role).
 */

export interface PostgresLocation {
  kind: 'postgres';
  url: string;
}

export interface S3Location {
  kind: 's3';
  bucket: string;
  /** '' or ends with '/': each blob's key is prefix + sha256 */
  prefix: string;
  /** null: AWS S3 itself */
  endpoint: string | null;
  /** null: from the AWS SDK's usual sources (AWS_REGION, the profile) */
  region: string | null;
  /** bucket in the path (MinIO, R2, most S3-compatible servers) rather than in the host name */
  forcePathStyle: boolean;
}

/** Why a URL was refused; config.ts turns it into a ConfigError (messages start with the option's name, as its others do). */
export class StoreUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUrlError';
  }
}

export function parseStoreUrl(text: string): PostgresLocation {
  const url = parseUrl(text, 'store');
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new StoreUrlError(`store must be a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL (leave it out for the embedded SQLite store), got ${url.protocol}//…`);
  }
  if (url.hostname === '') throw new StoreUrlError('store needs a host: postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  if (url.pathname.replace(/^\//, '') === '') throw new StoreUrlError('store needs a database name: postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  return { kind: 'postgres', url: text };
}

/** Bucket names as S3 allows them (3-63 of a-z 0-9 . -, starting and ending with a letter or digit). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const S3_PARAMS = new Set(['endpoint', 'region', 'path-style']);

export function parseBlobsUrl(text: string): S3Location {
  const url = parseUrl(text, 'blobs');
  if (url.protocol !== 's3:') {
    throw new StoreUrlError(`blobs must be an s3://BUCKET[/PREFIX]?endpoint=URL URL (leave it out for blobs in the data directory), got ${url.protocol}//…`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new StoreUrlError('blobs must not carry credentials (URLs are logged): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) instead');
  }
  const bucket = url.hostname;
  if (!BUCKET.test(bucket)) {
    throw new StoreUrlError(`blobs names the bucket ${JSON.stringify(bucket)}, which is not a bucket name (3-63 characters of a-z, 0-9, '.', '-'): s3://BUCKET[/PREFIX]?endpoint=URL`);
  }
  for (const name of url.searchParams.keys()) {
    if (!S3_PARAMS.has(name)) throw new StoreUrlError(`blobs has an unknown parameter '${name}' (known: ${[...S3_PARAMS].join(', ')})`);
  }
  const endpoint = url.searchParams.get('endpoint');
  if (endpoint !== null) {
    const e = parseUrl(endpoint, 'blobs endpoint');
    if (e.protocol !== 'http:' && e.protocol !== 'https:') throw new StoreUrlError(`blobs endpoint must be an http:// or https:// URL, got ${JSON.stringify(endpoint)}`);
  }
  const pathStyle = url.searchParams.get('path-style');
  if (pathStyle !== null && pathStyle !== 'true' && pathStyle !== 'false') throw new StoreUrlError(`blobs path-style must be true or false, got ${JSON.stringify(pathStyle)}`);
  const prefix = decodeURIComponent(url.pathname).replace(/^\/+/, '');
  return {
    kind: 's3',
    bucket,
    prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
    endpoint,
    // S3-compatible servers mostly ignore the region but the SDK must sign with one; MinIO's default is us-east-1
    region: url.searchParams.get('region') ?? (endpoint !== null ? 'us-east-1' : null),
    forcePathStyle: pathStyle === null ? endpoint !== null : pathStyle === 'true',
  };
}

function parseUrl(text: string, what: string): URL {
  try {
    return new URL(text);
  } catch {
    throw new StoreUrlError(`${what} is not a URL: ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)}`);
  }
}
