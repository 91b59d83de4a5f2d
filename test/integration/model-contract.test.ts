/**
 * The shipped model folder honours the InstructPix2Pix ONNX contract (engine.md section 2): names, dtypes,
 * ranks, fixed channel counts and dynamic batch/spatial axes, checked on the raw sessions in onnxruntime-node.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';

const MODEL = path.resolve(__dirname, '..', '..', 'models', 'tiny-pix2pix');
const FOLDERS = [MODEL, `${MODEL}-fp16`].filter((d) => fs.existsSync(path.join(d, 'unet', 'model.onnx')));

type Spec = { name: string; types: string[]; rank: number[]; channels?: number };
const CONTRACT: Record<string, { inputs: Spec[]; outputs: Spec[] }> = {
  text_encoder: {
    inputs: [{ name: 'input_ids', types: ['int32', 'int64'], rank: [2] }],
    outputs: [{ name: 'last_hidden_state', types: ['float32', 'float16'], rank: [3] }],
  },
  unet: {
    inputs: [
      { name: 'sample', types: ['float32', 'float16'], rank: [4], channels: 8 },
      { name: 'timestep', types: ['float32', 'float16', 'int64'], rank: [0, 1] },
      { name: 'encoder_hidden_states', types: ['float32', 'float16'], rank: [3] },
    ],
    outputs: [{ name: 'out_sample', types: ['float32', 'float16'], rank: [4], channels: 4 }],
  },
  vae_encoder: {
    inputs: [{ name: 'sample', types: ['float32', 'float16'], rank: [4], channels: 3 }],
    outputs: [{ name: 'latent_parameters', types: ['float32', 'float16'], rank: [4], channels: 8 }],
  },
  vae_decoder: {
    inputs: [{ name: 'latent_sample', types: ['float32', 'float16'], rank: [4], channels: 4 }],
    outputs: [{ name: 'sample', types: ['float32', 'float16'], rank: [4], channels: 3 }],
  },
};

function check(meta: readonly ort.InferenceSession.ValueMetadata[], specs: Spec[]): void {
  for (const spec of specs) {
    const m = meta.find((x) => x.name === spec.name);
    expect(m).toBeDefined();
    if (!m || !m.isTensor) throw new Error(`${spec.name} missing or not a tensor`);
    expect(spec.types).toContain(m.type);
    expect(spec.rank).toContain(m.shape.length);
    if (spec.channels !== undefined) expect(m.shape[1]).toBe(spec.channels);
    // batch and spatial axes must be dynamic (symbolic) so any batch and any multiple of 64 works
    if (m.shape.length === 4) {
      expect(typeof m.shape[0]).toBe('string');
      expect(typeof m.shape[2]).toBe('string');
      expect(typeof m.shape[3]).toBe('string');
    }
  }
}

describe.each(FOLDERS)('model folder %s', (dir) => {
  const sessions: Record<string, ort.InferenceSession> = {};

  beforeAll(async () => {
    for (const c of Object.keys(CONTRACT)) sessions[c] = await ort.InferenceSession.create(path.join(dir, c, 'model.onnx'));
  });
  afterAll(async () => {
    for (const s of Object.values(sessions)) await s.release();
  });

  it.each(Object.keys(CONTRACT))('%s matches the InstructPix2Pix contract', (component) => {
    check(sessions[component].inputMetadata, CONTRACT[component].inputs);
    check(sessions[component].outputMetadata, CONTRACT[component].outputs);
  });

  it('has the diffusers/optimum side files the engine reads', () => {
    const vae = JSON.parse(fs.readFileSync(path.join(dir, 'vae_decoder', 'config.json'), 'utf8'));
    expect(vae.scaling_factor).toBeGreaterThan(0);
    expect(vae.block_out_channels).toHaveLength(4); // -> VAE scale factor 8
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'unet', 'config.json'), 'utf8')).in_channels).toBe(8);
    const sched = JSON.parse(fs.readFileSync(path.join(dir, 'scheduler', 'scheduler_config.json'), 'utf8'));
    expect(sched).toMatchObject({ _class_name: 'EulerAncestralDiscreteScheduler', beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000 });
    expect(fs.existsSync(path.join(dir, 'tokenizer', 'tokenizer.json'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'model_index.json'))).toBe(true);
  });

  it('runs at batch 3 and a non-square multiple of 64 (192x128 pixels, 24x16 latents)', async () => {
    const f16 = sessions.unet.inputMetadata[0].isTensor && (sessions.unet.inputMetadata[0] as { type: string }).type === 'float16';
    const tensor = (dims: number[], fill: number) => {
      const n = dims.reduce((a, b) => a * b, 1);
      return f16 ? new ort.Tensor('float16', new Uint16Array(n).fill(fill === 0 ? 0 : 0x3c00), dims) : new ort.Tensor('float32', new Float32Array(n).fill(fill), dims);
    };
    const idsMeta = sessions.text_encoder.inputMetadata[0] as { type: string };
    const ids = idsMeta.type === 'int64' ? new ort.Tensor('int64', new BigInt64Array(3 * 77).fill(1n), [3, 77]) : new ort.Tensor('int32', new Int32Array(3 * 77).fill(1), [3, 77]);
    const text = (await sessions.text_encoder.run({ input_ids: ids })).last_hidden_state;
    expect(text.dims.slice(0, 2)).toEqual([3, 77]);

    const image = tensor([1, 3, 128, 192], 0);
    const enc = (await sessions.vae_encoder.run({ sample: image })).latent_parameters;
    expect(enc.dims).toEqual([1, 8, 16, 24]);

    const tMeta = sessions.unet.inputMetadata.find((m) => m.name === 'timestep') as unknown as { type: string; shape: unknown[] };
    const t = f16 ? new ort.Tensor('float16', new Uint16Array(3).fill(0x6000), [3]) : new ort.Tensor('float32', new Float32Array(3).fill(500), [3]);
    expect(tMeta.shape).toHaveLength(1);
    const out = (await sessions.unet.run({ sample: tensor([3, 8, 16, 24], 0), timestep: t, encoder_hidden_states: text })).out_sample;
    expect(out.dims).toEqual([3, 4, 16, 24]);
    const values = f16 ? Array.from(out.data as Uint16Array).map((h) => h & 0x7c00) : Array.from(out.data as Float32Array);
    expect(values.every((v) => Number.isFinite(v))).toBe(true);

    const dec = (await sessions.vae_decoder.run({ latent_sample: tensor([1, 4, 16, 24], 0) })).sample;
    expect(dec.dims).toEqual([1, 3, 128, 192]);
  });
});

it('ships the fp32 and fp16 models within the size budget (25 MB together)', () => {
  let total = 0;
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else total += fs.statSync(path.join(d, e.name)).size;
    }
  };
  FOLDERS.forEach(walk);
  expect(FOLDERS).toHaveLength(2); // fp32 and fp16 both ship
  expect(total).toBeLessThanOrEqual(25 * 1024 * 1024);
});
