/**
 * Downloads an InstructPix2Pix ONNX export from a Hugging Face hub (or anything serving its URL layout):
 *
 *   {endpoint}/api/models/{repo}/revision/{rev}?blobs=true   -> {siblings: [{rfilename, size?, lfs?: {sha256, size}}]}
 *   {endpoint}/{repo}/resolve/{rev}/{path}                   -> the file's bytes (Range requests answered with 206)
 *
 * Only the files the engine reads are fetched (selectModelFiles). Each file is written to `<file>.part`,
 * resumed with a Range header when a `.part` exists (after a dropped connection, or from an earlier run),
 * checked against the listing's size and, for LFS files, sha256, then fsynced and renamed into place, so a
 * finished file is always complete. `HF_TOKEN` (passed in as `token`) goes out as a bearer token.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubSource {
  /** e.g. https://huggingface.co (no trailing slash needed) */
  endpoint: string;
  /** owner/name */
  repo: string;
  revision: string;
  /** bearer token (HF_TOKEN) or null */
  token: string | null;
}

export interface RemoteFile {
  /** path inside the repository, '/'-separated */
  path: string;
  size: number | null;
  /** for LFS files: the sha256 of the content */
  sha256: string | null;
}

/** A download that cannot succeed as asked; the message says which file and what to do. */
export class DownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DownloadError';
  }
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;
/** each path segment: no '.', '..', empty segments or backslashes: a listing must not write outside the folder */
const SAFE_PATH = /^(?!.*(^|\/)\.{1,2}(\/|$))[A-Za-z0-9._@+=-]+(\/[A-Za-z0-9._@+=-]+)*$/;

const siblingSchema = z.looseObject({
  rfilename: z.string().min(1).max(1000),
  size: z.number().int().nonnegative().nullish(),
  lfs: z
    .looseObject({
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      size: z.number().int().nonnegative().nullish(),
    })
    .nullish(),
});
const listingSchema = z.looseObject({ siblings: z.array(siblingSchema) });

export function checkRepoId(repo: string): void {
  if (!REPO_ID.test(repo)) throw new DownloadError(`'${repo}' is not a hub repository id: expected owner/name, e.g. timbrooks/instruct-pix2pix`);
}

function authHeaders(src: HubSource): Record<string, string> {
  return { 'User-Agent': 'layerloop-models', ...(src.token ? { Authorization: `Bearer ${src.token}` } : {}) };
}

function base(src: HubSource): string {
  return src.endpoint.replace(/\/+$/, '');
}

export function listingUrl(src: HubSource): string {
  return `${base(src)}/api/models/${src.repo}/revision/${encodeURIComponent(src.revision)}?blobs=true`;
}

export function fileUrl(src: HubSource, file: string): string {
  return `${base(src)}/${src.repo}/resolve/${encodeURIComponent(src.revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/** The repository's files at the revision, with sizes and LFS hashes where the hub gives them. */
export async function listRepo(src: HubSource): Promise<RemoteFile[]> {
  checkRepoId(src.repo);
  const url = listingUrl(src);
  let res: Response;
  try {
    res = await fetch(url, { headers: { ...authHeaders(src), Accept: 'application/json' } });
  } catch (err) {
    throw new DownloadError(`cannot reach ${base(src)} (${causeOf(err)}): check the network, or pass --endpoint`);
  }
  if (res.status === 401 || res.status === 403) {
    throw new DownloadError(
      `${src.repo}: access denied (HTTP ${res.status}) at ${base(src)}: ${src.token ? 'HF_TOKEN was sent but is not allowed to read this repository' : 'set HF_TOKEN for a private or gated repository'}`,
    );
  }
  if (res.status === 404) {
    throw new DownloadError(`${src.repo}: repository or revision '${src.revision}' not found at ${base(src)} (HTTP 404): check the id and --revision${src.token ? '' : ' (private repositories need HF_TOKEN)'}`);
  }
  if (!res.ok) throw new DownloadError(`${src.repo}: listing the files failed (HTTP ${res.status} from ${url})`);
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    throw new DownloadError(`${src.repo}: the listing at ${url} is not JSON: is --endpoint a Hugging Face hub?`);
  }
  const parsed = listingSchema.safeParse(body);
  if (!parsed.success) throw new DownloadError(`${src.repo}: the listing at ${url} has no 'siblings' array of {rfilename}: is --endpoint a Hugging Face hub?`);
  return parsed.data.siblings.map((s) => ({ path: s.rfilename, size: s.lfs?.size ?? s.size ?? null, sha256: s.lfs?.sha256 ?? null }));
}

export const MODEL_COMPONENTS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'] as const;
const COMPONENT = `(?:${MODEL_COMPONENTS.join('|')})`;
const WANTED = [
  /^model_index\.json$/,
  /^[^/]+\/config\.json$/,
  /^tokenizer\/[^/]+$/,
  /^scheduler\/[^/]+$/,
  new RegExp(`^${COMPONENT}/model\\.onnx$`),
  // external weights of large graphs: optimum's model.onnx_data, torch's *.onnx.data, older exports' weights.pb
  new RegExp(`^${COMPONENT}/[^/]+(?:\\.onnx_data|\\.onnx\\.data|\\.pb)$`),
];

/**
 * The files an InstructPix2Pix ONNX folder needs: model_index.json, component configs, tokenizer/, scheduler/,
 * the four model.onnx graphs and their external data. Throws when the repository lacks a required one.
 */
export function selectModelFiles(files: readonly RemoteFile[], repo: string): RemoteFile[] {
  const wanted = files.filter((f) => WANTED.some((re) => re.test(f.path)));
  const have = new Set(wanted.map((f) => f.path));
  const required = ['model_index.json', ...MODEL_COMPONENTS.map((c) => `${c}/model.onnx`)];
  const missing = required.filter((p) => !have.has(p));
  if (missing.length > 0) {
    throw new DownloadError(
      `${repo} does not look like an InstructPix2Pix ONNX export (diffusers/optimum layout): missing ${missing.join(', ')}. ` +
        `Export one with optimum (optimum-cli export onnx --model timbrooks/instruct-pix2pix out/) and upload or point --out at it`,
    );
  }
  if (!wanted.some((f) => f.path.startsWith('tokenizer/'))) throw new DownloadError(`${repo}: no tokenizer/ folder: the model cannot read instructions without it`);
  for (const f of wanted) {
    if (!SAFE_PATH.test(f.path)) throw new DownloadError(`${repo}: refusing the file name '${f.path}' from the listing (it could write outside the output folder)`);
  }
  return wanted.sort((a, b) => a.path.localeCompare(b.path));
}

// ------------------------------------------------------------------------------------------ one file

export interface DownloadOptions {
  /** progress lines (stderr in the CLI) */
  report: (line: string) => void;
  /** attempts per file after dropped connections or 5xx answers (default 5) */
  attempts?: number;
  /** base delay between attempts, doubled each time (default 500 ms) */
  retryDelayMs?: number;
}

export type FileOutcome = 'downloaded' | 'resumed' | 'present';

/** Whole-file sha256, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function sizeOf(file: string): Promise<number | null> {
  try {
    const st = await fs.stat(file);
    return st.isFile() ? st.size : null;
  } catch {
    return null;
  }
}

function causeOf(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

/** Thrown for an attempt that may succeed when repeated (a dropped connection, a 5xx). */
class RetryableError extends Error {}

/**
 * Fetch one file into `outDir`. Resumes `<file>.part` with a Range request; retries dropped connections;
 * checks size and sha256; renames into place. Returns how the file came to be there.
 */
export async function downloadFile(src: HubSource, file: RemoteFile, outDir: string, opts: DownloadOptions): Promise<FileOutcome> {
  const target = path.join(outDir, ...file.path.split('/'));
  const part = `${target}.part`;
  await fs.mkdir(path.dirname(target), { recursive: true });

  // already there from an earlier run: keep it if it checks out
  const existing = await sizeOf(target);
  if (existing !== null && (file.size === null || existing === file.size) && (file.sha256 === null || (await sha256File(target)) === file.sha256)) {
    return 'present';
  }

  const attempts = opts.attempts ?? 5;
  const delay = opts.retryDelayMs ?? 500;
  let resumed = false;
  for (let attempt = 1; ; attempt++) {
    try {
      const complete = await fetchInto(src, file, part, opts.report);
      resumed ||= complete.resumed;
      break;
    } catch (err) {
      if (!(err instanceof RetryableError) || attempt >= attempts) {
        if (err instanceof RetryableError) throw new DownloadError(`${file.path}: ${err.message}; gave up after ${attempts} attempts (run the command again to resume from ${path.basename(part)})`);
        throw err;
      }
      opts.report(`${file.path}: ${err.message}; resuming (attempt ${attempt + 1} of ${attempts})`);
      await new Promise((r) => setTimeout(r, delay * 2 ** (attempt - 1)));
    }
  }

  const size = (await sizeOf(part)) ?? 0;
  if (file.size !== null && size !== file.size) {
    await fs.rm(part, { force: true });
    throw new DownloadError(`${file.path}: downloaded ${size} bytes but the listing says ${file.size}; the partial file was deleted, run the command again`);
  }
  if (file.sha256 !== null) {
    const actual = await sha256File(part);
    if (actual !== file.sha256) {
      await fs.rm(part, { force: true });
      throw new DownloadError(`${file.path}: sha256 mismatch (expected ${file.sha256}, got ${actual}): the download is corrupt and was deleted; run the command again`);
    }
  }
  const handle = await fs.open(part, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(part, target);
  return resumed ? 'resumed' : 'downloaded';
}

/** One attempt: continue `part` from its current size. Resolves when the body ended. */
async function fetchInto(src: HubSource, file: RemoteFile, part: string, report: (line: string) => void): Promise<{ resumed: boolean }> {
  let offset = (await sizeOf(part)) ?? 0;
  if (file.size !== null && offset > file.size) {
    await fs.rm(part, { force: true });
    offset = 0;
  }
  if (file.size !== null && offset === file.size) return { resumed: true }; // an earlier run got every byte
  const url = fileUrl(src, file.path);
  const headers: Record<string, string> = { ...authHeaders(src), ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) };
  let res: Response;
  try {
    res = await fetch(url, { headers, redirect: 'follow' });
  } catch (err) {
    throw new RetryableError(`connection failed (${causeOf(err)})`);
  }
  if (res.status === 416 && offset > 0) {
    // the .part is not a prefix the server recognises: start over
    await res.body?.cancel();
    await fs.rm(part, { force: true });
    throw new RetryableError('the server refused to resume (HTTP 416); starting over');
  }
  if (res.status === 404) throw new DownloadError(`${file.path}: not found at ${url} (HTTP 404)`);
  if (res.status === 401 || res.status === 403) throw new DownloadError(`${file.path}: access denied (HTTP ${res.status}): set HF_TOKEN for a private or gated repository`);
  if (res.status >= 500 || res.status === 429) {
    await res.body?.cancel();
    throw new RetryableError(`the server answered HTTP ${res.status}`);
  }
  if (res.status !== 200 && res.status !== 206) throw new DownloadError(`${file.path}: unexpected HTTP ${res.status} from ${url}`);
  let resumed = false;
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== offset) {
      await res.body?.cancel();
      await fs.rm(part, { force: true });
      throw new RetryableError(`the server resumed at the wrong place (Content-Range '${res.headers.get('content-range')}'); starting over`);
    }
    resumed = offset > 0;
  } else {
    offset = 0; // a full answer: the server ignored the Range header
  }
  const length = Number(res.headers.get('content-length') ?? NaN);
  const total = file.size ?? (Number.isFinite(length) ? offset + length : null);
  if (resumed) report(`${file.path}: resuming at ${mb(offset)}${total !== null ? ` of ${mb(total)}` : ''}`);

  const out = await fs.open(part, offset > 0 ? 'a' : 'w');
  let written = offset;
  let lastReport = Date.now();
  try {
    if (!res.body) throw new RetryableError('the answer had no body');
    const reader = res.body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        throw new RetryableError(`the connection dropped after ${mb(written)} (${causeOf(err)})`);
      }
      if (chunk.done) break;
      await out.write(chunk.value);
      written += chunk.value.byteLength;
      if (Date.now() - lastReport >= 1000) {
        lastReport = Date.now();
        report(`${file.path}: ${mb(written)}${total !== null ? ` of ${mb(total)} (${Math.floor((100 * written) / Math.max(1, total))}%)` : ''}`);
      }
    }
  } finally {
    await out.close();
  }
  if (total !== null && written < total) throw new RetryableError(`the connection ended after ${mb(written)} of ${mb(total)}`);
  return { resumed };
}

// ------------------------------------------------------------------------------------------ a whole model

export interface ModelDownload {
  files: { path: string; size: number; outcome: FileOutcome }[];
  bytes: number;
}

/** List the repository, pick the model's files, fetch each (resumable). */
export async function downloadModel(src: HubSource, outDir: string, opts: DownloadOptions): Promise<ModelDownload> {
  const files = selectModelFiles(await listRepo(src), src.repo);
  const known = files.reduce((n, f) => n + (f.size ?? 0), 0);
  opts.report(`${src.repo}@${src.revision}: ${files.length} files, ${mb(known)}, into ${outDir}`);
  await fs.mkdir(outDir, { recursive: true });
  const done: ModelDownload['files'] = [];
  for (const [i, file] of files.entries()) {
    const outcome = await downloadFile(src, file, outDir, opts);
    const size = (await sizeOf(path.join(outDir, ...file.path.split('/')))) ?? 0;
    opts.report(`[${i + 1}/${files.length}] ${file.path} ${mb(size)} ${outcome === 'present' ? 'already present' : outcome}`);
    done.push({ path: file.path, size, outcome });
  }
  return { files: done, bytes: done.reduce((n, f) => n + f.size, 0) };
}
