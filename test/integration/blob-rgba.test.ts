/**
 * GET /v1/blobs/:sha256?format=rgba: the raw RGBA form Photoshop's UXP panel reads results in (it cannot
 * decode PNG), against the real server process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeImage } from '../../server/imaging/image';
import { openStore } from '../../server/store';
import { instruction, makeClient, runEdit, startServer, ROOT, type ServerProcess } from '../support/server';

describe('raw RGBA blob route', () => {
  let server: ServerProcess;
  let sha256: string;
  const png = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'shapes-320x224.png'));

  beforeAll(async () => {
    server = await startServer();
    const res = await fetch(`${server.url}/v1/blobs`, { method: 'PUT', headers: { 'Content-Type': 'image/png' }, body: png });
    sha256 = ((await res.json()) as { sha256: string }).sha256;
  });
  afterAll(async () => {
    expect((await server.stop()).code).toBe(0);
  });

  it('returns exactly the decoded pixels with their size in headers, exposed to browsers', async () => {
    const res = await fetch(`${server.url}/v1/blobs/${sha256}?format=rgba`, { headers: { Origin: 'null' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('x-image-width')).toBe('320');
    expect(res.headers.get('x-image-height')).toBe('224');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/X-Image-Width, X-Image-Height/);
    expect(res.headers.get('etag')).toBe(`"${sha256}-rgba"`);
    const body = new Uint8Array(await res.arrayBuffer());
    const expected = await decodeImage(png);
    expect(body.length).toBe(320 * 224 * 4);
    expect(Buffer.from(body).equals(Buffer.from(expected.data))).toBe(true);
  });

  it('keeps the PNG form and its cache identity separate', async () => {
    const asPng = await fetch(`${server.url}/v1/blobs/${sha256}`);
    expect(asPng.headers.get('content-type')).toBe('image/png');
    expect(asPng.headers.get('etag')).toBe(`"${sha256}"`);
    const notModified = await fetch(`${server.url}/v1/blobs/${sha256}?format=rgba`, { headers: { 'If-None-Match': `"${sha256}-rgba"` } });
    expect(notModified.status).toBe(304);
    const pngEtagOnRgba = await fetch(`${server.url}/v1/blobs/${sha256}?format=rgba`, { headers: { 'If-None-Match': `"${sha256}"` } });
    expect(pngEtagOnRgba.status).toBe(200);
  });

  it('after a restart (nothing cached) serves the same pixels; a latent blob is bytes, with no RGBA form', async () => {
    const client = makeClient(server.url);
    const { documentId } = await client.documents.open.mutate({ host: 'cli', hostDocumentKey: 'blob-rgba' });
    const { snap } = await runEdit(client, { documentId, parent: { kind: 'source', imageSha256: sha256 }, regions: instruction('make the circle blue'), options: { steps: 2 } });
    const resultSha = snap.result!.resultSha256s[0];
    const before = Buffer.from(await (await fetch(`${server.url}/v1/blobs/${resultSha}?format=rgba`)).arrayBuffer());
    expect((await server.stop()).code).toBe(0);

    const store = await openStore(server.dataDir);
    const node = await store.edits.getNode(snap.result!.editIds[0]);
    await store.close();
    const latentSha = node!.latent!.sha256;

    server = await startServer({ dataDir: server.dataDir });
    const after = Buffer.from(await (await fetch(`${server.url}/v1/blobs/${resultSha}?format=rgba`)).arrayBuffer());
    expect(after.length).toBe(320 * 224 * 4);
    expect(after.equals(before)).toBe(true);
    const source = Buffer.from(await (await fetch(`${server.url}/v1/blobs/${sha256}?format=rgba`)).arrayBuffer());
    expect(source.equals(Buffer.from((await decodeImage(png)).data))).toBe(true);

    const latent = await fetch(`${server.url}/v1/blobs/${latentSha}`);
    expect(latent.status).toBe(200);
    expect(latent.headers.get('content-type')).toBe('application/octet-stream');
    expect((await latent.arrayBuffer()).byteLength).toBe(node!.latent!.shape.reduce((a, b) => a * b, 1) * 2);
    const latentRgba = await fetch(`${server.url}/v1/blobs/${latentSha}?format=rgba`);
    expect(latentRgba.status).toBe(400);
    expect(((await latentRgba.json()) as { error: string }).error).toMatch(/is not an image, so it has no RGBA form/);
  });

  it('rejects unknown formats with a message', async () => {
    const res = await fetch(`${server.url}/v1/blobs/${sha256}?format=tiff`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/format must be 'rgba' .* or 'png', got 'tiff'/);
  });
});
