/**
 * Operating the server: structured logs (pino JSON on stderr, one line on stdout) and Prometheus metrics at
 * GET /metrics, against the real process with a token.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, instruction, logLines, makeClient, runEdit, startServer, upload, type Client, type ServerProcess } from '../support/server';

const TOKEN = 'ops-test-token-0123';
const AUTH = { Authorization: `Bearer ${TOKEN}` };

/** The value of one sample line (`name{labels} value`), or null when absent. */
function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

describe('layerloop server: logs and metrics', () => {
  let server: ServerProcess;
  let client: Client;

  beforeAll(async () => {
    server = await startServer({ token: TOKEN });
    client = makeClient(server.url, TOKEN);
  });
  afterAll(async () => {
    await server.stop();
    fs.rmSync(server.dataDir, { recursive: true, force: true });
  });

  it('serves /metrics only with the token, in the 0.0.4 text format, and the counts follow an edit', async () => {
    const refused = await fetch(`${server.url}/metrics`);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: string }).error).toMatch(/Authorization: Bearer/);

    const scrape = async () => {
      const res = await fetch(`${server.url}/metrics`, { headers: AUTH });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      return res.text();
    };
    const before = await scrape();
    for (const [name, type] of [
      ['layerloop_queue_jobs', 'gauge'],
      ['layerloop_jobs_total', 'counter'],
      ['layerloop_job_latency_seconds', 'histogram'],
      ['layerloop_job_run_seconds', 'histogram'],
      ['layerloop_engine_step_seconds', 'histogram'],
      ['layerloop_engine_seconds_total', 'counter'],
      ['layerloop_engine_onnx_seconds_total', 'counter'],
      ['layerloop_http_requests_total', 'counter'],
      ['layerloop_errors_total', 'counter'],
      ['layerloop_store_integrity_problems', 'gauge'],
      ['layerloop_image_cache_bytes', 'gauge'],
      ['layerloop_image_cache_images', 'gauge'],
    ]) {
      expect(before).toContain(`# TYPE ${name} ${type}\n`);
      expect(before).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
    }
    expect(sample(before, 'layerloop_jobs_total{state="succeeded"}')).toBe(0);
    expect(sample(before, 'layerloop_queue_jobs{state="waiting"}')).toBe(0);
    expect(sample(before, 'layerloop_store_integrity_problems')).toBe(0);
    expect(sample(before, 'layerloop_image_cache_bytes')).toBe(0);
    expect(sample(before, 'layerloop_http_requests_total{route="/metrics",method="GET",status="401"}')).toBe(1);

    const { documentId } = await client.documents.open.mutate({ host: 'web', hostDocumentKey: 'ops' });
    const { sha256 } = await upload(server.url, fs.readFileSync(path.join(FIXTURES, 'shapes-128.png')), 'image/png', TOKEN);
    await runEdit(client, { documentId, parent: { kind: 'source', imageSha256: sha256 }, regions: instruction('make the circle blue'), options: { steps: 6 } });

    const after = await scrape();
    expect(sample(after, 'layerloop_jobs_total{state="succeeded"}')).toBe(1);
    // the upload and the result, 128x128 RGBA each
    expect(sample(after, 'layerloop_image_cache_images')).toBe(2);
    expect(sample(after, 'layerloop_image_cache_bytes')).toBe(2 * 128 * 128 * 4);
    expect(sample(after, 'layerloop_job_latency_seconds_count{state="succeeded"}')).toBe(1);
    expect(sample(after, 'layerloop_job_latency_seconds_sum{state="succeeded"}')).toBeGreaterThan(0);
    expect(sample(after, 'layerloop_job_latency_seconds_bucket{state="succeeded",le="+Inf"}')).toBe(1);
    expect(sample(after, 'layerloop_job_run_seconds_count{state="succeeded"}')).toBe(1);
    expect(sample(after, 'layerloop_engine_step_seconds_count')).toBe(5); // 6 steps: the first one has no predecessor
    expect(sample(after, 'layerloop_engine_seconds_total')).toBeGreaterThan(0);
    const onnx = sample(after, 'layerloop_engine_onnx_seconds_total')!;
    expect(onnx).toBeGreaterThan(0);
    expect(onnx).toBeLessThanOrEqual(sample(after, 'layerloop_engine_seconds_total')!);
    expect(sample(after, 'layerloop_http_requests_total{route="/v1/blobs",method="PUT",status="201"}')).toBe(1);
    expect(sample(after, 'layerloop_http_requests_total{route="/trpc/edits.create",method="POST",status="200"}')).toBe(1);
    expect(sample(after, 'layerloop_http_requests_total{route="/trpc/jobs.get",method="GET",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'layerloop_http_requests_total{route="/metrics",method="GET",status="200"}')).toBe(1);
    expect(sample(after, 'layerloop_errors_total{source="http"}')).toBe(0);

    // unknown paths share one label: the metric cannot grow without bound
    await fetch(`${server.url}/no/such/${Date.now()}`, { headers: AUTH });
    await fetch(`${server.url}/trpc/no.such.procedure`, { headers: AUTH });
    const last = await scrape();
    expect(sample(last, 'layerloop_http_requests_total{route="other",method="GET",status="404"}')).toBe(1);
    expect(sample(last, 'layerloop_http_requests_total{route="/trpc/other",method="GET",status="404"}')).toBe(1);
  });

  it('logs JSON lines on stderr: every request with requestId, method, path, status, ms; job lines with jobId', async () => {
    const res = await fetch(`${server.url}/trpc/health`);
    const requestId = res.headers.get('x-request-id');
    await new Promise((r) => setTimeout(r, 100));
    const lines = logLines(server.stderr());
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      expect(['debug', 'info', 'warn', 'error']).toContain(line.level);
      expect(typeof line.msg).toBe('string');
      expect(typeof line.time).toBe('string');
    }
    const requests = lines.filter((l) => l.msg === 'request');
    const health = requests.find((l) => l.requestId === requestId);
    expect(health).toMatchObject({ method: 'GET', path: '/trpc/health', status: 200 });
    for (const r of requests) {
      expect(r.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(typeof r.method).toBe('string');
      expect(typeof r.path).toBe('string');
      expect(typeof r.status).toBe('number');
      expect(typeof r.ms).toBe('number');
    }
    for (const msg of ['edit queued', 'edit computed', 'edit stored', 'job ended']) {
      const line = lines.find((l) => l.msg === msg);
      expect(line?.jobId).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(lines.find((l) => l.msg === 'edit computed')).toMatchObject({ totalMs: expect.any(Number), onnxMs: expect.any(Number) });
    expect(server.stderr()).not.toContain(TOKEN);

    // stdout carries exactly the one line, also after a clean stop
    expect((await server.stop()).code).toBe(0);
    expect(server.stdout()).toMatch(/^layerloop listening on http:\/\/127\.0\.0\.1:\d+ \(model tiny-pix2pix on cpu\)\n$/);
  });
});

describe('layerloop server start-up lines', () => {
  it('--device auto on a machine without CUDA logs one neutral line, no warning', async () => {
    const server = await startServer({ args: ['--device', 'auto'] });
    try {
      if (!server.stdout().includes(' on cpu)')) return; // a machine with CUDA: auto picked it, nothing to say
      const cuda = logLines(server.stderr()).filter((l) => /cuda/i.test(String(l.msg)));
      expect(cuda).toEqual([expect.objectContaining({ level: 'info', msg: expect.stringMatching(/^no usable CUDA GPU: running on the CPU/) })]);
      expect(logLines(server.stderr()).filter((l) => l.level === 'warn')).toEqual([]);
    } finally {
      await server.stop();
      fs.rmSync(server.dataDir, { recursive: true, force: true });
    }
  });
});
