/**
 * Masks from words through the real server process (dist/server/main.js with the shipped models/tiny-clipseg):
 * masks.preview shows the mask a maskText gets, edits.create derives the same one, stores it as a blob, records
 * it (with its words) on the node and edits only there; a phrase that names nothing is a 400 with a message
 * and never an edit of the whole image.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeImage, maskFromImage } from '../../server/imaging/image';
import { maskIoU } from '../../server/engine/segmenter';
import { FIXTURES, makeClient, runEdit, startServer, upload, type Client, type ServerProcess } from '../support/server';

let server: ServerProcess;
let client: Client;
let documentId = '';
let imageSha256 = '';

beforeAll(async () => {
  server = await startServer();
  client = makeClient(server.url);
  documentId = (await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'mask-text' })).documentId;
  imageSha256 = (await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')))).sha256;
}, 90_000);

afterAll(async () => {
  await server.stop();
  fs.rmSync(server.dataDir, { recursive: true, force: true });
});

async function rgba(sha256: string): Promise<Uint8Array> {
  const res = await fetch(`${server.url}/v1/blobs/${sha256}?format=rgba`);
  expect(res.status).toBe(200);
  return new Uint8Array(await res.arrayBuffer());
}

const badRequest = async (call: Promise<unknown>): Promise<string> => {
  try {
    await call;
  } catch (err) {
    const e = err as { message: string; data?: { httpStatus?: number } };
    expect(e.data?.httpStatus).toBe(400);
    return e.message;
  }
  throw new Error('expected a 400');
};

describe('masks from words', () => {
  test('masks.preview: "the circle" gives the circle (IoU >= 0.8 with the drawn mask), as a grayscale PNG blob', async () => {
    const preview = await client.masks.preview.mutate({ documentId, parent: { kind: 'source', imageSha256 }, maskText: 'the circle' });
    expect(preview).toMatchObject({ width: 128, height: 128, segmenter: 'layerloop/tiny-clipseg' });
    const drawn = maskFromImage(await decodeImage(fs.readFileSync(path.join(FIXTURES, 'shapes-128-circle-mask.png'))));
    const bytes = await rgba(preview.maskSha256);
    const derived = new Float32Array(128 * 128);
    for (let i = 0; i < derived.length; i++) {
      expect(bytes[i * 4 + 1]).toBe(bytes[i * 4]); // grayscale
      derived[i] = bytes[i * 4] / 255;
    }
    expect(maskIoU(derived, drawn)).toBeGreaterThanOrEqual(0.8);
    expect(preview.coverage).toBeCloseTo(derived.filter((v) => v >= 0.5).length / derived.length, 2);
  });

  test('an edit with maskText uses, stores and records the previewed mask; outside it the pixels stay the same', async () => {
    const parent = { kind: 'source', imageSha256 } as const;
    const preview = await client.masks.preview.mutate({ documentId, parent, maskText: 'the circle' });
    const { snap } = await runEdit(client, {
      documentId,
      parent,
      regions: [{ instruction: 'make the circle blue', maskText: 'the circle' }],
      options: { steps: 8, seed: 3 },
    });
    const editId = snap.result!.editIds[0];
    const { nodes } = await client.documents.history.query({ documentId });
    const node = nodes.find((n) => n.id === editId)!;
    expect(node.regions).toEqual([{ instruction: 'make the circle blue', maskSha256: preview.maskSha256, maskText: 'the circle' }]);

    const source = await rgba(imageSha256);
    const result = await rgba(snap.result!.resultSha256s[0]);
    const mask = await rgba(preview.maskSha256);
    let outside = 0;
    let changedOutside = 0;
    let changedInside = 0;
    for (let i = 0; i < 128 * 128; i++) {
      const differs = [0, 1, 2].some((c) => source[i * 4 + c] !== result[i * 4 + c]);
      if (mask[i * 4] === 0) {
        outside++;
        if (differs) changedOutside++;
      } else if (mask[i * 4] >= 128 && differs) changedInside++;
    }
    expect(outside).toBeGreaterThan(128 * 128 * 0.8); // the circle is a small part of the image
    expect(changedOutside).toBe(0); // bit-identical outside the derived mask: not a whole-image edit
    expect(changedInside).toBeGreaterThan(100);
  }, 60_000);

  test('an empty phrase, an unknown word, a phrase naming nothing here, or a mask and maskText together: 400 with a message, no edit', async () => {
    const parent = { kind: 'source', imageSha256 } as const;
    const before = (await client.documents.history.query({ documentId })).nodes.length;
    const create = (region: Record<string, unknown>) =>
      client.edits.create.mutate({ documentId, parent, regions: [{ instruction: 'make it red', ...region }] as never, options: { steps: 4 } });
    expect(await badRequest(create({ maskText: '  ' }))).toBe('regions[0].maskText is empty: name what to edit, e.g. "the circle", or send a mask instead');
    expect(await badRequest(create({ maskText: 'the hexagon' }))).toBe('regions[0].maskText: the segmenter does not know "hexagon": use words it knows, or draw a mask');
    // shapes-128 holds a circle, a triangle and a square: no diamond
    expect(await badRequest(create({ maskText: 'the diamond' }))).toBe(
      'regions[0].maskText: "the diamond" matches nothing in this image (the mask came out empty): name something the image shows, or draw a mask',
    );
    expect(await badRequest(create({ maskText: 'the circle', maskSha256: null }))).toBe('regions[0]: send either maskSha256 or maskText, not both');
    expect(await badRequest(client.masks.preview.mutate({ documentId, parent, maskText: 'the blue shape' }))).toMatch(/^maskText: "the blue shape" matches nothing in this image/);
    expect((await client.documents.history.query({ documentId })).nodes.length).toBe(before);
  });
});
