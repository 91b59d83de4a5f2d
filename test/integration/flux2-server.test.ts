/**
 * The server on a klein folder (--model-dir): an edit with a reference image (`references: [sha256]`), then a
 * continuation that conditions on the stored klein latent (latent iteration, nothing re-encoded), each recorded in
 * the document's history; the InstructPix2Pix server refuses references with a message. Runs the built server.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeClient, startServer, upload, waitForJob, type Client, type ServerProcess } from '../support/server';

const KLEIN = path.join(__dirname, '..', 'fixtures', 'flux2');
const png = (file: string) => new Uint8Array(fs.readFileSync(path.join(KLEIN, file)));

async function succeeded(client: Client, jobId: string) {
  const snap = await waitForJob(client, jobId);
  if (snap.state !== 'succeeded') throw new Error(`job ${jobId} ended ${snap.state}: ${snap.error}`);
  return snap.result!;
}

describe('server with a FLUX.2 [klein] model', () => {
  let server: ServerProcess;
  let client: Client;
  beforeAll(async () => {
    server = await startServer({ args: ['--model-dir', path.join(KLEIN, 'tiny-klein-distilled')] });
    client = makeClient(server.url);
  });
  afterAll(async () => server?.stop());

  it('edits with a reference image, then continues from the stored latent', async () => {
    const health = await client.health.query();
    expect(health.model).toMatchObject({ name: 'tiny-klein-distilled', family: 'FLUX.2 [klein]', readsReferences: true });
    const { loaded } = await client.models.list.query();
    expect(loaded).toMatchObject({ name: 'tiny-klein-distilled', family: 'FLUX.2 [klein]' });
    const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'klein' });
    const source = await upload(server.url, png('source.png'));
    const reference = await upload(server.url, png('reference.png'));
    const first = await client.edits.create.mutate({
      documentId, parent: { kind: 'source', imageSha256: source.sha256 }, references: [reference.sha256],
      regions: [{ instruction: 'make the mug look like this', maskSha256: null }], options: { steps: 4, seed: 3 },
    });
    const one = await succeeded(client, first.jobId);
    const second = await client.edits.create.mutate({
      documentId, parent: { kind: 'edit', editId: one.editIds[0] }, regions: [{ instruction: 'make the circle red', maskSha256: null }], options: { steps: 4 },
    });
    const two = await succeeded(client, second.jobId);
    const { nodes } = await client.documents.history.query({ documentId });
    const byId = new Map(nodes.map((n) => [n.id, n]));
    expect(byId.get(one.editIds[0])).toMatchObject({ conditioning: 'pixels', instruction: 'make the mug look like this' });
    expect(byId.get(one.editIds[0])!.options).toMatchObject({ references: [reference.sha256], model: 'tiny-klein-distilled' });
    expect(byId.get(two.editIds[0])!.options).not.toHaveProperty('references');
    expect(byId.get(two.editIds[0])).toMatchObject({ conditioning: 'latent', parentId: one.editIds[0] });
    expect(byId.get(two.editIds[0])!.latent?.shape).toEqual([128, 4, 4]);
    expect(two.resultSha256s[0]).not.toBe(one.resultSha256s[0]);
  });

  it('answers a reference that is not on the server (or not this workspace\'s) as not found, before queueing', async () => {
    const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'klein-missing-reference' });
    const source = await upload(server.url, png('source.png'));
    const unknown = 'ab'.repeat(32);
    await expect(client.edits.create.mutate({
      documentId, parent: { kind: 'source', imageSha256: source.sha256 }, references: [unknown],
      regions: [{ instruction: 'make the mug look like this', maskSha256: null }], options: { steps: 4 },
    })).rejects.toThrow(`references[0]: no blob ${unknown} on this server: upload the image with PUT /v1/blobs first`);
  });
});

describe('server with an InstructPix2Pix model', () => {
  it('refuses reference images with a message before queueing, and a reference it cannot read as not found', async () => {
    const server = await startServer();
    try {
      const client = makeClient(server.url);
      const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'p2p' });
      const source = await upload(server.url, png('source.png'));
      const create = (references: string[]) => client.edits.create.mutate({
        documentId, parent: { kind: 'source', imageSha256: source.sha256 }, references,
        regions: [{ instruction: 'x', maskSha256: null }], options: { steps: 2 },
      });
      await expect(create([source.sha256])).rejects.toThrow(/references: the InstructPix2Pix model .* reads no reference images/);
      const jobs = await client.documents.history.query({ documentId });
      expect(jobs.nodes.filter((n) => n.kind === 'edit')).toEqual([]);
    } finally {
      await server.stop();
    }
  });
});
