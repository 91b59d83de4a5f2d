/**
 * The only module that touches onnxruntime-node: execution-provider choice, session creation, and a
 * `run` that converts between the engine's Float32Array world and each model's declared dtypes, checks
 * feeds against the model's inputs, and reports dims on failure.
 */
import * as ort from 'onnxruntime-node';
import { float32ToHalf, halfToFloat32 } from './fp16';

// ORT's global logger is set up by the first session in the process and never again. Its provider bridge
// prints an error line of its own when the CUDA library is missing; loadWithDevice reports that once, in our
// words, and every other ORT failure reaches us as an exception. So: fatal only, before any session exists.
ort.env.logLevel = 'fatal';

export type Device = 'auto' | 'cuda' | 'cpu';
export type Provider = 'cuda' | 'cpu';
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32';

export interface TensorSpec {
  name: string;
  type: TensorType;
  /** numbers for fixed dims, strings for symbolic (dynamic) ones */
  shape: (number | string)[];
}

/** What a feed carries before conversion to the model's dtype. */
export interface Feed {
  data: Float32Array | Int32Array;
  dims: number[];
}

export interface RunTimer {
  /** milliseconds spent inside session.run, summed over the engine's lifetime */
  onnxMs: number;
  calls: number;
  /** the same, per model file (optional: benchmarks ask for it) */
  perFile?: Record<string, { ms: number; calls: number }>;
}

export type Log = (message: string) => void;

export class OnnxModel {
  private constructor(
    readonly file: string,
    readonly provider: Provider,
    readonly inputs: TensorSpec[],
    readonly outputs: TensorSpec[],
    private readonly session: ort.InferenceSession,
    private readonly timer: RunTimer,
  ) {}

  static async load(file: string, provider: Provider, timer: RunTimer, threads?: number): Promise<OnnxModel> {
    const session = await ort.InferenceSession.create(file, {
      executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId: 0 }] : ['cpu'],
      graphOptimizationLevel: 'all',
      // fatal only: a failed CUDA probe is reported once, by loadWithDevice, not by ORT's own stderr line
      logSeverityLevel: 4,
      // Idle pool threads must sleep, not spin: spinning threads keep the cores busy between runs, starving the
      // main thread (uploads, PNG encoding, SQLite) and the next step's own work. Measured on 2 cores: the
      // 8-step server edit took 131-143 ms without spinning vs 190-200 ms with it (bench/RESULTS.md).
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
    });
    const spec = (meta: readonly ort.InferenceSession.ValueMetadata[]): TensorSpec[] =>
      meta.map((m) => {
        if (!m.isTensor) throw new Error(`${file}: '${m.name}' is not a tensor`);
        const type = m.type as string;
        if (!['float32', 'float16', 'int64', 'int32'].includes(type)) {
          throw new Error(`${file}: '${m.name}' has unsupported type ${type}`);
        }
        return { name: m.name, type: type as TensorType, shape: [...m.shape] };
      });
    return new OnnxModel(file, provider, spec(session.inputMetadata), spec(session.outputMetadata), session, timer);
  }

  input(name: string): TensorSpec | undefined {
    return this.inputs.find((s) => s.name === name);
  }

  output(name: string): TensorSpec | undefined {
    return this.outputs.find((s) => s.name === name);
  }

  /** Run with float32/int32 feeds converted to the declared input types; outputs come back as float32. */
  async run(feeds: Record<string, Feed>, outputNames: string[]): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
    const missing = this.inputs.filter((s) => !(s.name in feeds)).map((s) => s.name);
    const extra = Object.keys(feeds).filter((n) => !this.input(n));
    if (missing.length || extra.length) {
      throw new Error(`${this.file}: feeds do not match the model inputs (missing: [${missing}], unexpected: [${extra}])`);
    }
    const tensors: Record<string, ort.Tensor> = {};
    for (const spec of this.inputs) tensors[spec.name] = toTensor(spec, feeds[spec.name]);
    const started = performance.now();
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run(tensors, outputNames);
    } catch (err) {
      const dims = this.inputs.map((s) => `${s.name}: ${s.type}[${feeds[s.name].dims}]`).join(', ');
      throw new Error(`${this.file}: inference failed with ${dims}: ${(err as Error).message}`, { cause: err });
    } finally {
      const ms = performance.now() - started;
      this.timer.onnxMs += ms;
      this.timer.calls += 1;
      if (this.timer.perFile) {
        const entry = (this.timer.perFile[this.file] ??= { ms: 0, calls: 0 });
        entry.ms += ms;
        entry.calls += 1;
      }
      for (const t of Object.values(tensors)) t.dispose();
    }
    const out: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const name of outputNames) {
      const t = results[name];
      out[name] = { data: fromTensor(t), dims: [...t.dims] };
      t.dispose();
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function toTensor(spec: TensorSpec, feed: Feed): ort.Tensor {
  const { data, dims } = feed;
  switch (spec.type) {
    case 'float32':
      return new ort.Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data), dims);
    case 'float16':
      return new ort.Tensor('float16', float32ToHalf(data instanceof Float32Array ? data : Float32Array.from(data)), dims);
    case 'int64': {
      // trunc mirrors numpy's astype(int64) in the reference pipelines (engine.md 0.6)
      const ints = new BigInt64Array(data.length);
      for (let i = 0; i < data.length; i++) ints[i] = BigInt(Math.trunc(data[i]));
      return new ort.Tensor('int64', ints, dims);
    }
    case 'int32':
      return new ort.Tensor('int32', data instanceof Int32Array ? data : Int32Array.from(data, Math.trunc), dims);
  }
}

function fromTensor(t: ort.Tensor): Float32Array {
  switch (t.type) {
    case 'float32':
      return new Float32Array(t.data as Float32Array);
    case 'float16':
      return halfToFloat32(t.data as Uint16Array);
    default:
      throw new Error(`unsupported output type ${t.type}`);
  }
}

/**
 * Resolve the requested device to a provider that works. onnxruntime-node throws instead of falling back
 * when the CUDA provider library is missing (engine.md 0.7), so `auto` probes CUDA with the first model
 * and falls back to CPU with one neutral line; an explicit `cuda` fails with install instructions.
 */
export async function loadWithDevice(
  file: string,
  device: Device,
  timer: RunTimer,
  log: Log,
  threads?: number,
): Promise<OnnxModel> {
  if (device === 'cpu') return OnnxModel.load(file, 'cpu', timer, threads);
  try {
    return await OnnxModel.load(file, 'cuda', timer, threads);
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    if (device === 'cuda') {
      throw new Error(
        `device 'cuda' requested but the CUDA execution provider could not be loaded (${reason}). ` +
          `Install it with 'npm install onnxruntime-node --onnxruntime-node-install=cuda12' on a host with CUDA 12 and cuDNN 9 ` +
          `(README: GPU install), or start with --device cpu.`,
        { cause: err },
      );
    }
    // a CPU-only machine is normal for `auto`: one neutral line (`--device cuda` fails with the full reason)
    log('no usable CUDA GPU: running on the CPU (start with --device cuda to see why CUDA could not be loaded)');
    return OnnxModel.load(file, 'cpu', timer, threads);
  }
}
