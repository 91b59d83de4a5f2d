import { parseBlobsUrl, parseStoreUrl } from '../../../server/store/urls';

describe('--store URLs', () => {
  test('postgres:// and postgresql:// URLs are taken as they are', () => {
    expect(parseStoreUrl('postgres://layerloop:pw@db.internal:5432/layerloop')).toEqual({ kind: 'postgres', url: 'postgres://layerloop:pw@db.internal:5432/layerloop' });
    expect(parseStoreUrl('postgresql://db/layerloop?sslmode=require').kind).toBe('postgres');
  });

  test('anything else says what is expected, without echoing the URL (it may hold a password)', () => {
    expect(() => parseStoreUrl('mysql://u:secret@h/db')).toThrow(/^store must be a postgres:\/\/USER:PASSWORD@HOST:PORT\/DATABASE URL \(leave it out for the embedded SQLite store\), got mysql:\/\/…$/);
    expect(() => parseStoreUrl('postgres://u:secret@h')).toThrow('store needs a database name: postgres://USER:PASSWORD@HOST:PORT/DATABASE');
    expect(() => parseStoreUrl('not a url')).toThrow('store is not a URL: "not a url"');
  });
});

describe('--blobs URLs', () => {
  test('bucket, prefix and endpoint; path-style addressing and us-east-1 by default with an endpoint', () => {
    expect(parseBlobsUrl('s3://layerloop-blobs/team/a?endpoint=http%3A%2F%2Fminio%3A9000')).toEqual({
      kind: 's3',
      bucket: 'layerloop-blobs',
      prefix: 'team/a/',
      endpoint: 'http://minio:9000',
      region: 'us-east-1',
      forcePathStyle: true,
    });
    expect(parseBlobsUrl('s3://layerloop-blobs?endpoint=https://acc.r2.cloudflarestorage.com&region=auto')).toMatchObject({ prefix: '', region: 'auto', forcePathStyle: true });
  });

  test('AWS S3 itself: region and addressing from the SDK, unless the URL says', () => {
    expect(parseBlobsUrl('s3://my-bucket/')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: '', endpoint: null, region: null, forcePathStyle: false });
    expect(parseBlobsUrl('s3://my-bucket?region=eu-west-1&path-style=true')).toMatchObject({ region: 'eu-west-1', forcePathStyle: true });
  });

  test('mistakes are named', () => {
    expect(() => parseBlobsUrl('file:///data/blobs')).toThrow(/^blobs must be an s3:\/\/BUCKET\[\/PREFIX\]\?endpoint=URL URL/);
    expect(() => parseBlobsUrl('s3://KEY:SECRET@bucket')).toThrow(/must not carry credentials .* set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    expect(() => parseBlobsUrl('s3://Bad_Bucket')).toThrow('blobs names the bucket "Bad_Bucket", which is not a bucket name (3-63 characters of a-z, 0-9, \'.\', \'-\'): s3://BUCKET[/PREFIX]?endpoint=URL');
    expect(() => parseBlobsUrl('s3://ab')).toThrow(/is not a bucket name/);
    expect(() => parseBlobsUrl('s3://bucket?endpont=http://x')).toThrow("blobs has an unknown parameter 'endpont' (known: endpoint, region, path-style)");
    expect(() => parseBlobsUrl('s3://bucket?endpoint=minio:9000')).toThrow('blobs endpoint must be an http:// or https:// URL, got "minio:9000"');
    expect(() => parseBlobsUrl('s3://bucket?path-style=yes')).toThrow('blobs path-style must be true or false, got "yes"');
  });
});
