/**
 * `npm run models` (dist/cli/models.js, built by `npm run build`) against a local stand-in for the Hugging Face
 * hub: a node:http server on 127.0.0.1 serving models/tiny-pix2pix in the hub's URL layout (the listing with
 * sizes and LFS sha256s, files under /resolve/ with Range support). No real network.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'models.js');
const MODEL = path.join(ROOT, 'models', 'tiny-pix2pix');
const REPO = 'test-org/tiny-pix2pix';

interface Sibling {
  rfilename: string;
  size: number;
  lfs?: { sha256: string; size: number };
}

interface HubOptions {
  /** the first full (non-Range) request of this file gets half its bytes, then the connection is cut */
  cutFirst?: string;
  /** the listing gives this file a wrong sha256 */
  wrongSha?: string;
}

interface Hub {
  url: string;
  requests: { path: string; range: string | null; status: number; auth: string | null }[];
  close: () => Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function modelFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    return e.isDirectory() ? modelFiles(path.join(dir, e.name), rel) : [rel];
  });
}

const SOURCE_FILES = modelFiles(MODEL);
/** what the hub lists beyond the model's files: things the download must skip */
const EXTRA = ['README.md', 'unet/diffusion_pytorch_model.safetensors'];

function startHub(opts: HubOptions = {}): Promise<Hub> {
  const requests: Hub['requests'] = [];
  const bytes = new Map<string, Buffer>(SOURCE_FILES.map((f) => [f, fs.readFileSync(path.join(MODEL, f))]));
  for (const f of EXTRA) bytes.set(f, Buffer.from(`not a model file: ${f}\n`));
  const cut = new Set<string>();
  const siblings: Sibling[] = [...bytes.entries()].map(([rfilename, b]) => {
    const lfs = rfilename.endsWith('.onnx') || rfilename.endsWith('.safetensors');
    const sha = rfilename === opts.wrongSha ? 'f'.repeat(64) : sha256(b);
    return lfs ? { rfilename, size: b.length, lfs: { sha256: sha, size: b.length } } : { rfilename, size: b.length };
  });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    const range = req.headers.range ?? null;
    const record = (status: number) => requests.push({ path: url.pathname, range, status, auth: req.headers.authorization ?? null });
    const listing = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (listing) {
      if (listing[1] !== REPO || listing[2] !== 'main') {
        record(404);
        res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: 'Repository not found' }));
        return;
      }
      record(200);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: REPO, sha: 'abc', siblings }));
      return;
    }
    const prefix = `/${REPO}/resolve/main/`;
    const file = url.pathname.startsWith(prefix) ? decodeURIComponent(url.pathname.slice(prefix.length)) : null;
    const body = file === null ? undefined : bytes.get(file);
    if (!body) {
      record(404);
      res.writeHead(404).end('Entry not found');
      return;
    }
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m) {
      const start = Number(m[1]);
      if (start >= body.length) {
        record(416);
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        return;
      }
      record(206);
      res.writeHead(206, { 'Content-Length': body.length - start, 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` });
      res.end(body.subarray(start));
      return;
    }
    record(200);
    res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
    if (file === opts.cutFirst && !cut.has(file)) {
      cut.add(file);
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => setTimeout(() => res.socket?.destroy(), 50));
      return;
    }
    res.end(body);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/** Runs the CLI asynchronously (the hub lives in this process's event loop). */
function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, HF_TOKEN: '', HF_ENDPOINT: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** the model's own files; its documentation (EVAL.md, samples.png) is listed by the hub but must be skipped too */
const WANTED = SOURCE_FILES.filter((f) => !/\.(md|png)$/.test(f));

let work: string;
beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-models-'));
});
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('npm run models -- download / verify', () => {
  it('downloads only the model files, checks them, sends HF_TOKEN, then verifies the folder', async () => {
    const hub = await startHub();
    try {
      const out = path.join(work, 'full');
      const r = await runCli(['download', REPO, '--out', out, '--endpoint', hub.url], { HF_TOKEN: 'hf_test_token' });
      expect(r.stderr).not.toMatch(/FAILED/);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^OK: /m);
      expect(r.stdout).toMatch(/unet\n\s+inputs: {2}sample float32\[batch_size,8,height,width\]/);
      expect(r.stdout).toMatch(/VAE scaling factor [\d.]+/);
      expect(r.stdout).toMatch(/native size 128x128/);
      for (const f of WANTED) expect(sha256(fs.readFileSync(path.join(out, f)))).toBe(sha256(fs.readFileSync(path.join(MODEL, f))));
      for (const f of EXTRA) expect(fs.existsSync(path.join(out, f))).toBe(false);
      expect(modelFiles(out).filter((f) => f.endsWith('.part'))).toEqual([]);
      expect(hub.requests.every((q) => q.auth === 'Bearer hf_test_token')).toBe(true);
      expect(hub.requests.filter((q) => q.path.includes('/resolve/')).map((q) => q.path.split('/resolve/main/')[1]).sort()).toEqual([...WANTED].sort());

      // a second run finds everything in place and downloads nothing
      const before = hub.requests.length;
      const again = await runCli(['download', REPO, '--out', out, '--endpoint', hub.url]);
      expect(again.code).toBe(0);
      expect(hub.requests.slice(before).filter((q) => q.path.includes('/resolve/'))).toEqual([]);
      expect(again.stderr).toMatch(/already present/);
    } finally {
      await hub.close();
    }
  });

  it('resumes with a Range request after the connection drops, and continues a .part left by an earlier run', async () => {
    const hub = await startHub({ cutFirst: 'unet/model.onnx' });
    try {
      const out = path.join(work, 'resume');
      const leftover = fs.readFileSync(path.join(MODEL, 'vae_decoder', 'model.onnx')).subarray(0, 1000);
      fs.mkdirSync(path.join(out, 'vae_decoder'), { recursive: true });
      fs.writeFileSync(path.join(out, 'vae_decoder', 'model.onnx.part'), leftover);

      const r = await runCli(['download', REPO, '--out', out, '--endpoint', hub.url]);
      expect(r.stderr).not.toMatch(/FAILED/);
      expect(r.code).toBe(0);
      const unet = hub.requests.filter((q) => q.path.endsWith('/unet/model.onnx'));
      expect(unet[0]).toMatchObject({ range: null, status: 200 });
      expect(unet[1].status).toBe(206);
      expect(Number(/^bytes=(\d+)-$/.exec(unet[1].range ?? '')?.[1])).toBeGreaterThan(0);
      expect(r.stderr).toMatch(/unet\/model\.onnx: the connection (dropped|ended)/);
      expect(r.stderr).toMatch(/unet\/model\.onnx: resuming at/);
      expect(hub.requests.find((q) => q.path.endsWith('/vae_decoder/model.onnx'))).toMatchObject({ range: 'bytes=1000-', status: 206 });
      for (const f of ['unet/model.onnx', 'vae_decoder/model.onnx']) {
        expect(sha256(fs.readFileSync(path.join(out, f)))).toBe(sha256(fs.readFileSync(path.join(MODEL, f))));
        expect(fs.existsSync(path.join(out, `${f}.part`))).toBe(false);
      }
      expect(r.stdout).toMatch(/^OK: /m);
    } finally {
      await hub.close();
    }
  });

  it('rejects a file whose sha256 does not match the listing, naming the file', async () => {
    const hub = await startHub({ wrongSha: 'text_encoder/model.onnx' });
    try {
      const out = path.join(work, 'corrupt');
      const r = await runCli(['download', REPO, '--out', out, '--endpoint', hub.url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/FAILED: text_encoder\/model\.onnx: sha256 mismatch \(expected f{64}, got [0-9a-f]{64}\)/);
      expect(fs.existsSync(path.join(out, 'text_encoder', 'model.onnx'))).toBe(false);
      expect(fs.existsSync(path.join(out, 'text_encoder', 'model.onnx.part'))).toBe(false);
      expect(r.stdout).not.toMatch(/OK:/);
    } finally {
      await hub.close();
    }
  });

  it('says clearly when the repository does not exist, and when a folder is not a model', async () => {
    const hub = await startHub();
    try {
      const r = await runCli(['download', 'test-org/no-such-model', '--out', path.join(work, 'missing'), '--endpoint', hub.url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/FAILED: test-org\/no-such-model: repository or revision 'main' not found at http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\)/);
    } finally {
      await hub.close();
    }
    const bad = await runCli(['verify', path.join(ROOT, 'test', 'fixtures')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/FAILED: .* is not a usable model: .*has no model_index\.json.*supported: InstructPix2Pix/);
    const usage = await runCli(['download', REPO]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/download needs --out/);
  });
});
