/**
 * Cross-request batching (server/engine/batching.ts): the server's engine (the worker thread, started as
 * `npm start` starts it) under --clients concurrent clients, once per --batch value, in the same run.
 *
 *   (a) throughput: each client runs --chain-edit chains (edit the source image, then continue from that result's
 *       latent, as an Apply after an Apply does) for --duration s: edits/min, p50/p95 latency per edit, CPU
 *       seconds per edit (all threads of this process). The --batch values alternate over --rounds rounds so a
 *       change in the machine's load hits both alike; the gain is each value's edits/min over batch 1's.
 *   (b) a lone edit: --lone edits one at a time, alternating between an engine with batching off and one with
 *       the largest --batch: median latency of each (a lone edit must pay nothing for batching). On a loaded
 *       machine these medians move by more than the difference, so (c) measures the added work itself.
 *   (c) the scheduler's own cost for a lone edit: a call through a StepBatcher with one member against a direct
 *       call of the same trivial runner, in microseconds per call (one call per step).
 *   (d) what batching can gain at most on this device: the UNet alone at batch 3 (one edit's guidance batch) and
 *       3 x each --batch value, the same number of elements each, alternating; wall and CPU ms per 3 elements.
 *       CPU time barely depends on the machine's load, so this is the figure to trust on a shared machine.
 *
 *   npm run bench:batching [-- --batch 1,4 --clients 16 --duration 60 --rounds 2 --steps 8 --chain 3 --lone 20
 *                              --threads 0 --provider cpu|cuda --size 0 --model DIR]
 *
 * --provider cuda runs the same on a GPU host (prints {"ran": false, ...} and exits 2 where CUDA cannot load);
 * --threads 0 leaves ORT's intra-op threads at its default (one per core), as the server does. The machine's
 * load average before and after is part of the output. Prints one JSON object on stdout; progress on stderr.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { editImage, type EditSource } from '../server/edit/edit-image';
import { StepBatcher } from '../server/engine/batching';
import { Engine } from '../server/engine/engine';
import { OnnxModel, type Device, type RunTimer } from '../server/engine/ort';
import { createImage, decodeImage, type RgbaImage } from '../server/imaging/image';
import { benchArgs, median, round } from './lib/args';

const REPO = path.resolve(__dirname, '..', '..');

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** A different picture per client, so no two edits are the same (the shipped fixture, shifted and tinted). */
function clientImage(base: RgbaImage, side: number, client: number): RgbaImage {
  const img = createImage(side, side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const sx = Math.floor(((x + client * 7) % side) * (base.width / side));
      const sy = Math.floor(((y + client * 3) % side) * (base.height / side));
      const from = (sy * base.width + sx) * 4;
      const to = (y * side + x) * 4;
      img.data[to] = (base.data[from] + client * 13) % 256;
      img.data[to + 1] = base.data[from + 1];
      img.data[to + 2] = base.data[from + 2];
      img.data[to + 3] = 255;
    }
  }
  return img;
}

const INSTRUCTIONS = ['make the circle blue', 'make the square red', 'make it snowy', 'turn the background green'];

interface Settings {
  steps: number;
  chain: number;
  side: number;
}

/** One edit as a client makes it: from the source pixels, or continuing from the previous result's latent. */
async function oneEdit(engine: Engine, source: EditSource, client: number, k: number, s: Settings): Promise<{ ms: number; next: EditSource }> {
  const started = performance.now();
  const result = await editImage(engine, source, [{ instruction: INSTRUCTIONS[(client + k) % INSTRUCTIONS.length], mask: null }], {
    steps: s.steps,
    seed: client * 1000 + k,
    previewEvery: 0,
  });
  const v = result.variations[0];
  return { ms: performance.now() - started, next: { kind: 'latent', image: v.image, latent: v.latent } };
}

async function throughput(engine: Engine, images: RgbaImage[], durationS: number, s: Settings) {
  const latencies: number[] = [];
  const deadline = performance.now() + durationS * 1000;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    images.map(async (image, client) => {
      for (let k = 0; performance.now() < deadline; k++) {
        let source: EditSource = { kind: 'pixels', image };
        for (let c = 0; c < s.chain && performance.now() < deadline; c++) {
          const { ms, next } = await oneEdit(engine, source, client, k * s.chain + c, s);
          latencies.push(ms);
          source = next;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { edits: latencies.length, seconds, latencies, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** Microseconds a lone member's call through the batcher adds over calling the runner directly. */
async function schedulerOverheadUs(calls: number): Promise<{ directUs: number; batchedUs: number }> {
  const x = new Float32Array(4);
  const runner = async (inputs: readonly Float32Array[]) => inputs.slice();
  const batcher = new StepBatcher(runner, 4);
  const lane = batcher.join();
  const time = async (call: () => Promise<unknown>) => {
    const started = performance.now();
    for (let i = 0; i < calls; i++) await call();
    return ((performance.now() - started) * 1000) / calls;
  };
  let directUs = Infinity;
  let batchedUs = Infinity;
  for (let round = 0; round < 5; round++) {
    directUs = Math.min(directUs, await time(() => runner([x])));
    batchedUs = Math.min(batchedUs, await time(() => batcher.call('k', x)));
  }
  lane.leave();
  return { directUs, batchedUs };
}

/** The UNet alone: wall and CPU ms per 3 batch elements at each batch size (same element count each). */
async function unetScaling(modelDir: string, provider: 'cpu' | 'cuda', threads: number | undefined, sizes: number[], side: number, rounds: number) {
  const timer: RunTimer = { onnxMs: 0, calls: 0 };
  const unet = await OnnxModel.load(path.join(modelDir, 'unet', 'model.onnx'), provider, timer, threads);
  const h = side / 8;
  const textDims = unet.input('encoder_hidden_states')!.shape;
  const dim = typeof textDims[2] === 'number' ? textDims[2] : 768;
  const tSpec = unet.input('timestep')!.shape;
  let seed = 1;
  const noise = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1);
  const feeds = new Map(
    sizes.map((b) => [
      b,
      {
        sample: { data: noise(b * 8 * h * h), dims: [b, 8, h, h] },
        timestep: tSpec.length === 0 ? { data: Float32Array.of(500), dims: [] } : tSpec[0] === 1 ? { data: Float32Array.of(500), dims: [1] } : { data: new Float32Array(b).fill(500), dims: [b] },
        encoder_hidden_states: { data: noise(b * 77 * dim), dims: [b, 77, dim] },
      },
    ]),
  );
  const elements = Math.max(...sizes);
  const totals = new Map(sizes.map((b) => [b, { wall: 0, cpu: 0 }]));
  for (const b of sizes) await unet.run(feeds.get(b)!, ['out_sample']); // warm-up per shape
  for (let r = 0; r < rounds; r++) {
    for (const b of r % 2 === 0 ? sizes : [...sizes].reverse()) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < elements / b; i++) await unet.run(feeds.get(b)!, ['out_sample']);
      const cpu = process.cpuUsage(cpu0);
      totals.get(b)!.wall += performance.now() - t0;
      totals.get(b)!.cpu += (cpu.user + cpu.system) / 1000;
    }
  }
  await unet.release();
  const per3 = (ms: number) => round((ms / rounds / elements) * 3, 2);
  return sizes.map((b) => ({ unetBatch: b, wallMsPer3Elements: per3(totals.get(b)!.wall), cpuMsPer3Elements: per3(totals.get(b)!.cpu) }));
}

async function main(): Promise<void> {
  const args = benchArgs({
    model: path.join(REPO, 'models', 'tiny-pix2pix'),
    provider: 'cpu',
    batch: '1,4',
    clients: 16,
    duration: 60,
    rounds: 2,
    steps: 8,
    chain: 3,
    lone: 20,
    threads: 0,
    size: 0,
  });
  const batches = [...new Set(String(args.batch).split(',').map(Number))];
  if (batches.some((b) => !Number.isInteger(b) || b < 1)) throw new Error(`--batch takes whole numbers >= 1, got ${args.batch}`);
  if (!batches.includes(1)) batches.unshift(1); // the baseline
  const device = args.provider as Device;
  const threads = args.threads > 0 ? args.threads : undefined;
  const loadBefore = os.loadavg();

  const engines = new Map<number, Engine>();
  try {
    for (const b of batches) engines.set(b, await Engine.start({ modelDir: args.model, device, threads, batch: b, log }));
  } catch (err) {
    process.stdout.write(JSON.stringify({ benchmark: 'batching', ran: false, provider: args.provider, reason: (err as Error).message }, null, 2) + '\n');
    process.exit(2);
  }
  const info = engines.get(1)!.info;
  const side = args.size || info.nativeSize;
  const base = await decodeImage(fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'shapes-128.png')));
  const images = Array.from({ length: args.clients }, (_, c) => clientImage(base, side, c));
  const s: Settings = { steps: args.steps, chain: args.chain, side };

  try {
    // warm-up: every engine's shapes (pixels and latent starts) once, and a batched step on each batching one
    for (const [b, engine] of engines) await throughput(engine, images.slice(0, Math.min(b, images.length)), 0.1, s);

    // (a) throughput, the batch values alternating over the rounds
    const runs = new Map<number, { edits: number; seconds: number; latencies: number[]; cpuSeconds: number }[]>();
    for (let round = 0; round < args.rounds; round++) {
      const order = round % 2 === 0 ? batches : [...batches].reverse();
      for (const b of order) {
        log(`round ${round + 1}/${args.rounds}: batch ${b}, ${args.clients} clients, ${args.duration} s (load ${os.loadavg()[0].toFixed(2)})`);
        const r = await throughput(engines.get(b)!, images, args.duration / args.rounds, s);
        log(`  ${r.edits} edits, ${round2((r.edits / r.seconds) * 60)} edits/min`);
        (runs.get(b) ?? runs.set(b, []).get(b)!).push(r);
      }
    }
    const configs = batches.map((b) => {
      const rs = runs.get(b)!;
      const edits = rs.reduce((n, r) => n + r.edits, 0);
      const seconds = rs.reduce((n, r) => n + r.seconds, 0);
      const latencies = rs.flatMap((r) => r.latencies);
      return {
        batch: b,
        edits,
        editsPerMin: round((edits / seconds) * 60, 1),
        perRoundEditsPerMin: rs.map((r) => round((r.edits / r.seconds) * 60, 1)),
        p50Ms: round(median(latencies), 0),
        p95Ms: round(percentile(latencies, 95), 0),
        cpuSecondsPerEdit: round(rs.reduce((n, r) => n + r.cpuSeconds, 0) / edits, 3),
      };
    });
    const off = configs[0].editsPerMin;
    const gain = Object.fromEntries(configs.slice(1).map((c) => [`batch${c.batch}`, round(c.editsPerMin / off, 2)]));

    // (b) a lone edit, alternating between batching off and the largest batch
    const biggest = Math.max(...batches);
    const lone: Record<'off' | 'on', number[]> = { off: [], on: [] };
    for (let i = 0; i < args.lone && biggest > 1; i++) {
      for (const which of i % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        const engine = engines.get(which === 'off' ? 1 : biggest)!;
        lone[which].push((await oneEdit(engine, { kind: 'pixels', image: images[0] }, 0, i, s)).ms);
      }
    }
    const loneOff = lone.off.length ? median(lone.off) : null;
    const scheduler = await schedulerOverheadUs(100_000);
    const scaling = await unetScaling(args.model, info.provider, threads, batches.map((b) => 3 * b), side, 6);
    const loneOn = lone.on.length ? median(lone.on) : null;

    process.stdout.write(
      JSON.stringify(
        {
          benchmark: 'batching',
          ran: true,
          provider: info.provider,
          model: info.name,
          precision: info.precision,
          size: `${side}x${side}`,
          steps: args.steps,
          chain: args.chain,
          clients: args.clients,
          durationS: args.duration,
          rounds: args.rounds,
          ortThreads: threads ?? 'default (one per core)',
          cores: os.cpus().length,
          loadAverage1m: { before: round(loadBefore[0], 2), after: round(os.loadavg()[0], 2) },
          configs,
          gainOverBatch1: gain,
          unetAlone: scaling,
          target: { gain: 1.3, met: Object.values(gain).some((g) => g >= 1.3) },
          loneEdit: {
            runs: lone.off.length,
            batchingOffMsMedian: loneOff === null ? null : round(loneOff, 1),
            [`batch${biggest}MsMedian`]: loneOn === null ? null : round(loneOn, 1),
            overheadPct: loneOff === null || loneOn === null ? null : round(((loneOn - loneOff) / loneOff) * 100, 1),
            schedulerUsPerStep: { direct: round(scheduler.directUs, 2), throughBatcher: round(scheduler.batchedUs, 2), added: round(scheduler.batchedUs - scheduler.directUs, 2) },
          },
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    for (const engine of engines.values()) await engine.close();
  }
}

function round2(v: number): number {
  return round(v, 1);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
