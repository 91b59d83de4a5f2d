/**
 * The backing services the backend suites run against (test/support/services.ts) are real and isolated: a
 * PostgreSQL cluster with a database per test, a Redis server, an S3 API with a bucket per test.
 */
import * as net from 'node:net';
import { GetObjectCommand, ListBucketsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Client as PgClient } from 'pg';
import { describeWithServices } from '../support/services';

/** One Redis command over RESP, its reply as text (no client library: the queue work brings one). */
async function redis(url: string, ...command: string[]): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const request = `*${command.length}\r\n${command.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    let reply = '';
    socket.on('error', reject);
    socket.on('data', (data) => {
      reply += data.toString();
      if (reply.endsWith('\r\n')) {
        socket.end();
        resolve(reply);
      }
    });
    socket.write(request);
  });
}

describeWithServices('backing services', ['postgres', 'redis', 's3'], (services) => {
  test('PostgreSQL: each createDatabase is a separate, empty database', async () => {
    const urls = [await services().postgres.createDatabase(), await services().postgres.createDatabase()];
    expect(urls[0]).not.toBe(urls[1]);
    const [a, b] = urls.map((connectionString) => new PgClient({ connectionString }));
    await Promise.all([a.connect(), b.connect()]);
    try {
      expect((await a.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v).toMatch(/^\d+/);
      await a.query('CREATE TABLE t (x int); INSERT INTO t VALUES (42)');
      expect((await a.query('SELECT x FROM t')).rows).toEqual([{ x: 42 }]);
      await expect(b.query('SELECT x FROM t')).rejects.toThrow(/relation "t" does not exist/);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  test('Redis answers PING and keeps a value', async () => {
    const { url } = services().redis;
    expect(await redis(url, 'PING')).toBe('+PONG\r\n');
    expect(await redis(url, 'SET', 'layerloop:test', 'hello')).toBe('+OK\r\n');
    expect(await redis(url, 'GET', 'layerloop:test')).toBe('$5\r\nhello\r\n');
  });

  test('S3: buckets are separate; an object round-trips', async () => {
    const s3 = services().s3;
    const [one, two] = [await s3.createBucket(), await s3.createBucket()];
    const client = s3.client();
    try {
      const names = ((await client.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);
      expect(names).toEqual(expect.arrayContaining([one, two]));
      await client.send(new PutObjectCommand({ Bucket: one, Key: 'k', Body: new Uint8Array([1, 2, 3]) }));
      const got = await client.send(new GetObjectCommand({ Bucket: one, Key: 'k' }));
      expect(await got.Body!.transformToByteArray()).toEqual(new Uint8Array([1, 2, 3]));
      await expect(client.send(new GetObjectCommand({ Bucket: two, Key: 'k' }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    } finally {
      client.destroy();
    }
  });
});
