/**
 * The cross-tenant probe, run against a real server on any backend (test/integration/isolation.test.ts on the
 * embedded store, test/backends/isolation.test.ts on PostgreSQL + S3): tenant A works (uploads, edits, a long
 * job still running), then tenant B asks for each of A's things and, beside it, for an unknown thing of the same
 * kind. Every answer must be 404, B's answer about A's thing must equal its answer about the unknown one once
 * the id in it is replaced, and none may carry anything of A's (ids, hashes, names).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { encodeHistoryMarker } from '../../shared/client';
import { FIXTURES, ROOT } from './server';

const run = promisify(execFile);

/** `npm run users -- …` as an admin runs it (dist/cli/users.js, built by `npm run build`); stdout's last line. */
export async function usersCli(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; last: string }> {
  const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'dist', 'cli', 'users.js'), ...args], { cwd: ROOT, env: { ...process.env, LAYERLOOP_STORE: '', LAYERLOOP_DATA_DIR: '', ...env } });
  const lines = stdout.trim().split('\n');
  return { stdout, stderr, last: lines[lines.length - 1] };
}

/**
 * A data dir where alice is in studio-a and bob in studio-b, and the history marker a file would carry after
 * alice worked on it (naming studio-a and a document of hers): what a panel sees when bob opens that file.
 */
export async function foreignMarkerSetup(dataDir: string): Promise<{ bob: string; theirs: string }> {
  await usersCli(['add', 'alice', '--workspace', 'studio-a', '--data-dir', dataDir]);
  const bob = (await usersCli(['add', 'bob', '--workspace', 'studio-b', '--data-dir', dataDir])).last;
  const studioA = (await usersCli(['workspaces', 'list', '--data-dir', dataDir])).stdout.match(/studio-a\s+([0-9a-f-]{36})/)![1];
  const theirs = encodeHistoryMarker({ workspace: { id: studioA, name: 'studio-a' }, documentId: 'f1f1f1f1-f1f1-4f1f-8f1f-f1f1f1f1f1f1' });
  return { bob, theirs };
}

export interface Answer {
  status: number;
  text: string;
}

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

/** A tRPC call over plain HTTP, as any client could send it: the status and body as they came. */
export async function call(url: string, token: string, kind: 'query' | 'mutation', procedure: string, input: unknown): Promise<Answer> {
  const res =
    kind === 'query'
      ? await fetch(`${url}/trpc/${procedure}?input=${encodeURIComponent(JSON.stringify(input))}`, { headers: auth(token) })
      : await fetch(`${url}/trpc/${procedure}`, { method: 'POST', headers: { ...auth(token), 'Content-Type': 'application/json' }, body: JSON.stringify(input) });
  return { status: res.status, text: await res.text() };
}

/** jobs.watch over SSE (as EventSource sends it): the status and the stream up to its first error (or 3 s). */
export async function watch(url: string, token: string, input: unknown, viaParam = false): Promise<Answer> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 3000);
  try {
    // viaParam: the token as the subscription's connection param (EventSource cannot set headers), as tRPC's link sends it
    const params = new URLSearchParams({ input: JSON.stringify(input) });
    if (viaParam) params.set('connectionParams', JSON.stringify({ token }));
    const target = `${url}/trpc/jobs.watch?${params.toString()}`;
    const res = await fetch(target, { headers: { Accept: 'text/event-stream', ...(viaParam ? {} : auth(token)) }, signal: controller.signal });
    let text = '';
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    try {
      while (!/serialized-error[\s\S]*\n\n/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      // aborted: what came so far is the answer
    }
    controller.abort();
    return { status: res.status, text };
  } finally {
    clearTimeout(timer);
  }
}

export async function blob(url: string, token: string, sha256: string, method: 'GET' | 'HEAD', format: 'rgba' | null): Promise<Answer> {
  const res = await fetch(`${url}/v1/blobs/${sha256}${format ? `?format=${format}` : ''}`, { method, headers: auth(token) });
  return { status: res.status, text: await res.text() };
}

export async function putBlob(url: string, token: string, bytes: Uint8Array, query = '', contentType = 'image/png'): Promise<Answer & { sha256?: string }> {
  const res = await fetch(`${url}/v1/blobs${query}`, { method: 'PUT', headers: { ...auth(token), 'Content-Type': contentType }, body: bytes });
  const text = await res.text();
  return { status: res.status, text, sha256: res.ok ? (JSON.parse(text) as { sha256: string }).sha256 : undefined };
}

/** tRPC's answers carry a request-specific nothing; this replaces `id` (and its case variants) by a placeholder. */
function normalize(answer: Answer, ids: string[]): Answer {
  let text = answer.text;
  for (const id of ids) text = text.split(id).join('<ID>');
  // SSE pings and ids differ per connection: keep the error event only
  const error = /event: serialized-error\ndata: (.*)\n/.exec(text);
  return { status: answer.status, text: error ? `serialized-error ${error[1]}` : text };
}

export interface Tenant {
  token: string;
  workspaceId: string;
  documentId: string;
  hostKey: string;
  /** the raw RGBA bytes (64 x 64) of its uploaded image: each tenant's own */
  sourceBytes: Uint8Array;
  sourceSha: string;
  maskSha: string;
  editId: string;
  jobId: string;
  resultSha: string;
  latentSha: string;
}

/** 64 x 64 RGBA pixels of its own for each seed (two tenants never upload the same bytes by chance). */
export function tenantImage(seed: number): Uint8Array {
  const out = new Uint8Array(64 * 64 * 4);
  for (let i = 0; i < 64 * 64; i++) {
    out.set([(i * 7 + seed * 31) & 255, (i >> 6) * 4, (seed * 53) & 255, 255], i * 4);
  }
  return out;
}

/** A mask of a square whose size depends on the seed. */
function tenantMask(seed: number): Uint8Array {
  const out = new Uint8Array(64 * 64 * 4);
  const edge = 16 + (seed % 16);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) out.set(x < edge && y < edge ? [255, 255, 255, 255] : [0, 0, 0, 255], (y * 64 + x) * 4);
  return out;
}

/** A tenant's work: an upload, a mask, a document, one finished edit (with a latent). */
export async function work(url: string, token: string, hostKey: string, seed: number): Promise<Tenant> {
  const sourceBytes = tenantImage(seed);
  const source = await putBlob(url, token, sourceBytes, '?width=64&height=64', 'application/octet-stream');
  const mask = await putBlob(url, token, tenantMask(seed), '?width=64&height=64', 'application/octet-stream');
  if (!source.sha256 || !mask.sha256) throw new Error(`upload failed: ${source.text} ${mask.text}`);
  const me = JSON.parse((await call(url, token, 'query', 'me', undefined)).text) as { result: { data: { defaultWorkspaceId: string } } };
  const opened = JSON.parse((await call(url, token, 'mutation', 'documents.open', { host: 'figma', hostDocumentKey: hostKey })).text) as { result: { data: { documentId: string } } };
  const documentId = opened.result.data.documentId;
  const created = await call(url, token, 'mutation', 'edits.create', {
    documentId,
    parent: { kind: 'source', imageSha256: source.sha256 },
    regions: [{ instruction: 'make the circle blue', maskSha256: mask.sha256 }],
    options: { steps: 4, seed },
  });
  if (created.status !== 200) throw new Error(`edits.create failed: ${created.text}`);
  const jobId = (JSON.parse(created.text) as { result: { data: { jobId: string } } }).result.data.jobId;
  for (let i = 0; ; i++) {
    const snap = (JSON.parse((await call(url, token, 'query', 'jobs.get', { jobId })).text) as { result: { data: { state: string; result: { editIds: string[]; resultSha256s: string[] } | null; error: string | null } } }).result.data;
    if (snap.state === 'succeeded') {
      const history = (JSON.parse((await call(url, token, 'query', 'documents.history', { documentId })).text) as { result: { data: { nodes: { id: string; latent: { sha256: string } | null }[] } } }).result.data;
      const editId = snap.result!.editIds[0];
      const latentSha = history.nodes.find((n) => n.id === editId)!.latent!.sha256;
      return { token, workspaceId: me.result.data.defaultWorkspaceId, documentId, hostKey, sourceBytes, sourceSha: source.sha256, maskSha: mask.sha256, editId, jobId, resultSha: snap.result!.resultSha256s[0], latentSha };
    }
    if (snap.state === 'failed' || snap.state === 'cancelled' || i > 600) throw new Error(`edit ${jobId} ended ${snap.state}: ${snap.error}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * For a server started with --max-stored-mib-per-user 1: the user uploads 500 x 500 of seeded noise (1,000,000 raw
 * bytes fit the quota; stored as a PNG of about 0.72 MiB) and edits a small square of it (outside the square the
 * result keeps the noise, so it stores about as much again), which takes the user past the quota; then asks for a
 * second edit. Returns that answer.
 */
export async function editPastQuota(url: string, token: string): Promise<Answer> {
  const side = 500;
  const noise = new Uint8Array(side * side * 4);
  let state = 12345;
  for (let i = 0; i < noise.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    noise[i] = i % 4 === 3 ? 255 : state >>> 24;
  }
  const square = new Uint8Array(side * side * 4);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) square.set(x >= 200 && x < 264 && y >= 200 && y < 264 ? [255, 255, 255, 255] : [0, 0, 0, 255], (y * side + x) * 4);
  const source = await putBlob(url, token, noise, `?width=${side}&height=${side}`, 'application/octet-stream');
  const mask = await putBlob(url, token, await sharp(square, { raw: { width: side, height: side, channels: 4 } }).png().toBuffer()); // a few KiB as a PNG
  if (!source.sha256 || !mask.sha256) throw new Error(`upload failed: ${source.text} ${mask.text}`);
  const documentId = (JSON.parse((await call(url, token, 'mutation', 'documents.open', { host: 'web', hostDocumentKey: 'quota' })).text) as { result: { data: { documentId: string } } }).result.data.documentId;
  const edit = () =>
    call(url, token, 'mutation', 'edits.create', { documentId, parent: { kind: 'source', imageSha256: source.sha256 }, regions: [{ instruction: 'make it blue', maskSha256: mask.sha256 }], options: { steps: 2, seed: 3 } });
  const first = await edit();
  if (first.status !== 200) throw new Error(`the first edit (under the quota) was refused: ${first.text}`);
  const jobId = (JSON.parse(first.text) as { result: { data: { jobId: string } } }).result.data.jobId;
  for (let i = 0; ; i++) {
    const snap = (JSON.parse((await call(url, token, 'query', 'jobs.get', { jobId })).text) as { result: { data: { state: string; error: string | null } } }).result.data;
    if (snap.state === 'succeeded') break;
    if (snap.state === 'failed' || snap.state === 'cancelled' || i > 600) throw new Error(`the first edit ended ${snap.state}: ${snap.error}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return edit();
}

/** editPastQuota's second edit: refused with the upload's 507 and message, before anything was queued. */
export function expectQuotaRefusal(answer: Answer): void {
  expect(answer.status).toBe(507);
  const body = JSON.parse(answer.text) as { error: { message: string; data: { httpStatus: number } } };
  expect(body.error.message).toMatch(/^your storage quota is used up: you store 1\.[3-9] MiB of 1 MiB, and an edit stores its results and latents\. Ask an admin to raise --max-stored-mib-per-user$/);
  expect(body.error.data.httpStatus).toBe(507);
}

export interface ProbeCase {
  name: string;
  /** B asks for A's thing */
  foreign: () => Promise<Answer>;
  /** B asks for an unknown thing of the same kind */
  unknown: () => Promise<Answer>;
  /** the ids that differ between the two questions (replaced before comparing) */
  ids: [foreignId: string, unknownId: string];
}

const unknownSha = () => randomUUID().replace(/-/g, '').padEnd(64, '0').slice(0, 64);

/**
 * The probe's cases. `running` is a job of A still running while they are asked (B's cancel must not stop it).
 */
export function probeCases(url: string, a: Tenant, b: Tenant, running: { jobId: string }): ProbeCase[] {
  const q = (procedure: string, input: unknown) => call(url, b.token, 'query', procedure, input);
  const m = (procedure: string, input: unknown) => call(url, b.token, 'mutation', procedure, input);
  const cases: ProbeCase[] = [];
  const byId = (name: string, foreignId: string, ask: (id: string) => Promise<Answer>) => {
    const unknownId = randomUUID();
    cases.push({ name, foreign: () => ask(foreignId), unknown: () => ask(unknownId), ids: [foreignId, unknownId] });
  };
  const bySha = (name: string, foreignSha: string, ask: (sha: string) => Promise<Answer>) => {
    const unknown = unknownSha();
    cases.push({ name, foreign: () => ask(foreignSha), unknown: () => ask(unknown), ids: [foreignSha, unknown] });
  };

  byId('documents.history of the document', a.documentId, (id) => q('documents.history', { documentId: id }));
  byId('documents.get of the document', a.documentId, (id) => q('documents.get', { documentId: id }));
  byId('documents.history of a node id', a.editId, (id) => q('documents.history', { documentId: id }));
  byId('documents.open in the other workspace', a.workspaceId, (id) => m('documents.open', { host: 'figma', hostDocumentKey: a.hostKey, workspaceId: id }));
  // what a plugin sends when its file's marker names another workspace: the same 404 as for a key nobody knows
  byId('documents.open with create: false and its host key', a.hostKey, (key) => m('documents.open', { host: 'figma', hostDocumentKey: key, create: false }));
  byId('jobs.get of a finished job', a.jobId, (id) => q('jobs.get', { jobId: id }));
  byId('jobs.get with previewAfterStep', a.jobId, (id) => q('jobs.get', { jobId: id, previewAfterStep: 1 }));
  byId('jobs.get of the running job', running.jobId, (id) => q('jobs.get', { jobId: id }));
  byId('jobs.get of a document id', a.documentId, (id) => q('jobs.get', { jobId: id }));
  byId('jobs.cancel of a finished job', a.jobId, (id) => m('jobs.cancel', { jobId: id }));
  byId('jobs.cancel of the running job', running.jobId, (id) => m('jobs.cancel', { jobId: id }));
  byId('jobs.watch (SSE) of a finished job', a.jobId, (id) => watch(url, b.token, { jobId: id }));
  byId('jobs.watch (SSE) of the running job', running.jobId, (id) => watch(url, b.token, { jobId: id }));
  byId('jobs.watch (SSE) resuming after lastEventId', a.jobId, (id) => watch(url, b.token, { jobId: id, lastEventId: '2' }));
  byId('jobs.watch (SSE) of the running job, token as connection param', running.jobId, (id) => watch(url, b.token, { jobId: id }, true));
  const create = (documentId: string, parent: unknown, maskSha256: string | null = null) =>
    m('edits.create', { documentId, parent, regions: [{ instruction: 'make it red', maskSha256 }], options: { steps: 2 } });
  byId('edits.create on the document', a.documentId, (id) => create(id, { kind: 'source', imageSha256: b.sourceSha }));
  byId('edits.create on the document, from its edit', a.documentId, (id) => create(id, { kind: 'edit', editId: a.editId }));
  byId('edits.create continuing from its edit', a.editId, (id) => create(b.documentId, { kind: 'edit', editId: id }));
  byId('edits.create continuing from its edit with own pixels', a.editId, (id) => create(b.documentId, { kind: 'edit', editId: id, pixelsSha256: b.resultSha }));
  bySha('edits.create from its uploaded image', a.sourceSha, (sha) => create(b.documentId, { kind: 'source', imageSha256: sha }));
  bySha('edits.create from its result image', a.resultSha, (sha) => create(b.documentId, { kind: 'source', imageSha256: sha }));
  bySha('edits.create with its mask', a.maskSha, (sha) => create(b.documentId, { kind: 'source', imageSha256: b.sourceSha }, sha));
  bySha('edits.create with its result as a mask', a.resultSha, (sha) => create(b.documentId, { kind: 'source', imageSha256: b.sourceSha }, sha));
  bySha('edits.create with its image as the painted pixels', a.sourceSha, (sha) => create(b.documentId, { kind: 'edit', editId: b.editId, pixelsSha256: sha }));
  byId('masks.preview on the document', a.documentId, (id) => m('masks.preview', { documentId: id, parent: { kind: 'source', imageSha256: b.sourceSha }, maskText: 'the circle' }));
  bySha('masks.preview of its uploaded image', a.sourceSha, (sha) => m('masks.preview', { documentId: b.documentId, parent: { kind: 'source', imageSha256: sha }, maskText: 'the circle' }));
  for (const [what, sha] of [
    ['uploaded image', a.sourceSha],
    ['mask', a.maskSha],
    ['result image', a.resultSha],
    ['latent', a.latentSha],
  ] as const) {
    for (const method of ['GET', 'HEAD'] as const) {
      for (const format of [null, 'rgba'] as const) {
        bySha(`${method} /v1/blobs of its ${what}${format ? ' ?format=rgba' : ''}`, sha, (s) => blob(url, b.token, s, method, format));
      }
    }
  }
  byId('PUT /v1/blobs into its workspace', a.workspaceId, async (id) => putBlob(url, b.token, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')), `?workspace=${id}`));
  cases.push({
    name: 'GET /metrics as a member (the answer of a route that does not exist)',
    foreign: async () => {
      const res = await fetch(`${url}/metrics`, { headers: auth(b.token) });
      return { status: res.status, text: await res.text() };
    },
    unknown: async () => {
      const res = await fetch(`${url}/metricz`, { headers: auth(b.token) });
      return { status: res.status, text: await res.text() };
    },
    ids: ['/metrics', '/metricz'],
  });
  return cases;
}

/** Runs every case; returns one line per failure (empty: all held). */
export async function runProbe(cases: ProbeCase[], a: Tenant): Promise<{ failures: string[]; answers: { name: string; status: number }[] }> {
  const secrets = [a.documentId, a.editId, a.jobId, a.sourceSha, a.maskSha, a.resultSha, a.latentSha, a.hostKey];
  const failures: string[] = [];
  const answers: { name: string; status: number }[] = [];
  for (const c of cases) {
    const foreign = await c.foreign();
    const unknown = await c.unknown();
    answers.push({ name: c.name, status: foreign.status });
    const f = normalize(foreign, [c.ids[0]]);
    const u = normalize(unknown, [c.ids[1]]);
    const sse = f.text.startsWith('serialized-error');
    if (sse ? !/NOT_FOUND/.test(f.text) : foreign.status !== 404) failures.push(`${c.name}: status ${foreign.status} (${foreign.text.slice(0, 200)})`);
    if (f.status !== u.status || f.text !== u.text) failures.push(`${c.name}: differs from an unknown one:\n  foreign ${f.status} ${f.text.slice(0, 300)}\n  unknown ${u.status} ${u.text.slice(0, 300)}`);
    const leaked = secrets.filter((s) => s !== c.ids[0] && foreign.text.includes(s));
    if (leaked.length > 0) failures.push(`${c.name}: the answer carries ${leaked.join(', ')}`);
  }
  return { failures, answers };
}
