import { ApiError, base64, createHttpApi, serverUrlProblem, type FetchLike, type ResponseLike } from '../../../plugin-uxp/src/api';
import { snapshot } from './fake-api';

type Init = Parameters<FetchLike>[1];

function response(status: number, body: string | Uint8Array, headers: Record<string, string> = {}): ResponseLike {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: { get: (name) => headers[name.toLowerCase()] ?? null },
    text: async () => new TextDecoder().decode(bytes),
    arrayBuffer: async () => bytes.slice().buffer,
  };
}

function recorder(reply: (url: string, init: Init) => ResponseLike | Promise<ResponseLike>) {
  const calls: { url: string; init: Init }[] = [];
  const fetchFn: FetchLike = async (url, init) => {
    calls.push({ url, init });
    return reply(url, init);
  };
  return { calls, fetchFn };
}

const config = { serverUrl: 'http://localhost:7860/', token: 'sekrit' };
const JOB = '5d1c8f3e-2b4a-4c6d-8e9f-0a1b2c3d4e5f';
const DOC = '6e2d9f4a-3c5b-4d7e-9fa0-1b2c3d4e5f60';
const ok = (data: unknown) => response(200, JSON.stringify({ result: { data } }));

describe('tRPC over fetch', () => {
  it('sends queries as GET with ?input= and the bearer token', async () => {
    const { calls, fetchFn } = recorder(() => ok(snapshot(JOB, DOC, { state: 'queued', position: 0 })));
    const api = createHttpApi(fetchFn, () => config);
    const snap = await api.getJob(JOB, 5);
    expect(snap.state).toBe('queued');
    expect(calls[0].url).toBe(`http://localhost:7860/trpc/jobs.get?input=${encodeURIComponent(JSON.stringify({ jobId: JOB, previewAfterStep: 5 }))}`);
    expect(calls[0].init).toEqual({ method: 'GET', headers: { authorization: 'Bearer sekrit' } });
  });

  it('sends mutations as POST with a JSON body', async () => {
    const { calls, fetchFn } = recorder(() => ok({ jobId: JOB, documentId: DOC, position: 2, seed: 77 }));
    const api = createHttpApi(fetchFn, () => ({ ...config, token: '' }));
    const request = { documentId: DOC, parent: { kind: 'source' as const, imageSha256: 'a'.repeat(64) }, regions: [{ instruction: 'x', maskSha256: null }] };
    expect(await api.createEdit(request)).toEqual({ jobId: JOB, position: 2, seed: 77 });
    expect(calls[0]).toEqual({
      url: 'http://localhost:7860/trpc/edits.create',
      init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) },
    });
  });

  it('opens documents as photoshop and reads history nodes', async () => {
    const { calls, fetchFn } = recorder((url) =>
      url.includes('documents.open')
        ? ok({ documentId: DOC })
        : ok({ nodes: [{ id: 'n1', parentId: null, kind: 'source', instruction: null, seed: null, variation: null, resultImageSha256: 'b'.repeat(64), createdAt: 't', extra: 1 }] }),
    );
    const api = createHttpApi(fetchFn, () => config);
    expect(await api.openDocument('key-1')).toBe(DOC);
    expect(calls[0].init.body).toBe(JSON.stringify({ host: 'photoshop', hostDocumentKey: 'key-1' }));
    expect(await api.history(DOC)).toEqual([{ id: 'n1', parentId: null, kind: 'source', instruction: null, seed: null, variation: null, resultImageSha256: 'b'.repeat(64), createdAt: 't' }]);
  });

  it('turns tRPC errors into ApiErrors with the server\'s message and code', async () => {
    const { fetchFn } = recorder(() => response(404, JSON.stringify({ error: { message: 'edit e1 not found', code: -32004, data: { code: 'NOT_FOUND', httpStatus: 404 } } })));
    const err = (await createHttpApi(fetchFn, () => config).cancelJob(JOB).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect([err.message, err.code, err.status]).toEqual(['edit e1 not found', 'NOT_FOUND', 404]);
  });

  it('says to set the token on 401', async () => {
    const { fetchFn } = recorder(() => response(401, JSON.stringify({ error: { message: 'missing token', data: { code: 'UNAUTHORIZED' } } })));
    await expect(createHttpApi(fetchFn, () => config).health()).rejects.toThrow(/refused the request \(missing token\): set the server's token in Settings/);
  });

  it('says what to check when the server cannot be reached or is not a layerloop server', async () => {
    const down = createHttpApi(async () => {
      throw new TypeError('Network request failed');
    }, () => config);
    await expect(down.health()).rejects.toThrow(/Cannot reach the layerloop server at http:\/\/localhost:7860 \(Network request failed\).*requiredPermissions.network.domains/);
    const html = createHttpApi(async () => response(404, '<html>nope</html>'), () => config);
    await expect(html.health()).rejects.toThrow(/did not answer health as a layerloop server does \(HTTP 404\)/);
    const bad = createHttpApi(async () => ok({ state: 'weird' }), () => config);
    await expect(bad.getJob(JOB)).rejects.toThrow(/answer to jobs.get is not what this plugin expects/);
  });

  it('validates the server URL before calling', async () => {
    const { calls, fetchFn } = recorder(() => ok(null));
    await expect(createHttpApi(fetchFn, () => ({ serverUrl: 'localhost:7860', token: '' })).health()).rejects.toThrow(/not an http:\/\/ or https:\/\/ address/);
    expect(calls).toHaveLength(0);
    expect(serverUrlProblem('')).toMatch(/Set the server URL/);
    expect(serverUrlProblem('https://edit.example.com/layerloop')).toBeNull();
  });
});

describe('blobs', () => {
  it('uploads raw RGBA with its size', async () => {
    const sha = 'c'.repeat(64);
    const { calls, fetchFn } = recorder(() => response(200, JSON.stringify({ sha256: sha, width: 2, height: 1 })));
    const rgba = new Uint8Array(8);
    expect(await createHttpApi(fetchFn, () => config).uploadRgba(rgba, 2, 1)).toBe(sha);
    expect(calls[0].url).toBe('http://localhost:7860/v1/blobs?width=2&height=1');
    expect(calls[0].init).toEqual({ method: 'PUT', headers: { authorization: 'Bearer sekrit', 'content-type': 'application/octet-stream' }, body: rgba });
  });

  it('passes on the upload error message', async () => {
    const api = createHttpApi(async () => response(400, JSON.stringify({ error: 'raw RGBA 2x1 must be 8 bytes (4 per pixel), got 7' })), () => config);
    await expect(api.uploadRgba(new Uint8Array(7), 2, 1)).rejects.toThrow('raw RGBA 2x1 must be 8 bytes (4 per pixel), got 7');
    const api2 = createHttpApi(async () => response(400, JSON.stringify({ message: 'raw RGBA 2x1 must be 8 bytes' })), () => config);
    await expect(api2.uploadRgba(new Uint8Array(7), 2, 1)).rejects.toThrow('raw RGBA 2x1 must be 8 bytes');
  });

  it('downloads raw RGBA results with their size headers', async () => {
    const sha = 'd'.repeat(64);
    const body = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const { calls, fetchFn } = recorder(() => response(200, body, { 'x-image-width': '1', 'x-image-height': '2', 'content-type': 'application/octet-stream' }));
    expect(await createHttpApi(fetchFn, () => config).downloadRgba(sha)).toEqual({ width: 1, height: 2, rgba: body });
    expect(calls[0].url).toBe(`http://localhost:7860/v1/blobs/${sha}?format=rgba`);
    // a server without the raw route answers with a PNG and no size headers
    const png = createHttpApi(async () => response(200, new Uint8Array([137, 80, 78, 71]), { 'content-type': 'image/png' }), () => config);
    await expect(png.downloadRgba(sha)).rejects.toThrow(/unexpected form .*format=rgba/);
  });

  it('makes PNG thumbnails into data URLs', async () => {
    const api = createHttpApi(async () => response(200, new Uint8Array([137, 80, 78, 71])), () => config);
    expect(await api.downloadPngDataUrl('e'.repeat(64))).toBe('data:image/png;base64,iVBORw==');
  });

  it('base64 matches the standard encoding', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 100, 20000]) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
      expect(base64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
    }
  });
});
