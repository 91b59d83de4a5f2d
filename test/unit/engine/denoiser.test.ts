import { fromEpsilon, fromVelocity, fromVPrediction, withGuidance, type NetworkCall, type SlotDenoiser } from '../../../server/engine/denoiser';
import { dualGuidance, type BatchSlot } from '../../../server/engine/guidance';

const f32 = (...v: number[]) => Float32Array.from(v);
function expectClose(actual: Float32Array, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (Math.abs(actual[i] - expected[i]) > tol * Math.max(1, Math.abs(expected[i]))) throw new Error(`[${i}]: expected ${expected[i]}, got ${actual[i]}`);
  }
}

// a clean latent and its noise; each test builds the noisy x its parameterisation defines and a network that
// predicts perfectly, so the wrapper must return exactly x0
const x0 = f32(0.4, -1.2, 2.5, 0.05);
const noise = f32(1.1, 0.3, -0.7, -2);
const slots: BatchSlot[] = [{ role: 'text', prompt: 0, zeroImage: false }];

describe('adapters to the denoiser contract', () => {
  test('epsilon (variance exploding): sees x / sqrt(sigma^2 + 1) at its timestep; x0 = x - sigma eps', async () => {
    const sigma = 3.2;
    const x = Float32Array.from(x0, (v, i) => v + sigma * noise[i]);
    const seen: { xIn: Float32Array; t: number }[] = [];
    const net: NetworkCall = async (xIn, t) => {
      seen.push({ xIn, t });
      return noise;
    };
    expectClose(await fromEpsilon(net, (s) => s * 100)(x, sigma, slots), x0);
    expect(seen[0].t).toBeCloseTo(320, 10);
    expectClose(seen[0].xIn, Array.from(x, (v) => v / Math.sqrt(sigma * sigma + 1)));
  });

  test('v-prediction: v = alpha eps - sigma_vp x0 on the VP sample; x0 = x / (sigma^2 + 1) - v sigma / sqrt(sigma^2 + 1)', async () => {
    const sigma = 1.7;
    const k = Math.sqrt(sigma * sigma + 1);
    const x = Float32Array.from(x0, (v, i) => v + sigma * noise[i]); // sigma space; the VP sample is x / k
    const v = Float32Array.from(x0, (z, i) => noise[i] / k - (sigma / k) * z);
    expectClose(await fromVPrediction(async () => v, () => 0)(x, sigma, slots), x0);
  });

  test('flow-matching velocity: x = (1 - sigma) x0 + sigma eps, v = eps - x0, seen as is; x0 = x - sigma v', async () => {
    const sigma = 0.6;
    const x = Float32Array.from(x0, (v, i) => (1 - sigma) * v + sigma * noise[i]);
    let seen: Float32Array | null = null;
    const net: NetworkCall = async (xIn) => {
      seen = xIn;
      return Float32Array.from(noise, (n, i) => n - x0[i]);
    };
    expectClose(await fromVelocity(net, (s) => s)(x, sigma, slots), x0);
    expect(seen).toBe(x);
  });

  test('a prediction of the wrong size is an error', async () => {
    await expect(fromEpsilon(async () => f32(1), () => 0)(x0, 1, slots)).rejects.toThrow(/predicted 1 values for a batch of 4/);
  });
});

describe('withGuidance', () => {
  test('runs every latent under every slot in one batch and combines each latent its own', async () => {
    // two latents of 2 values; the model returns x + (prompt code) so each slot's output is recognisable
    const calls: { x: Float32Array; slots: readonly BatchSlot[] }[] = [];
    const model: SlotDenoiser = async (x, _sigma, s) => {
      calls.push({ x, slots: s });
      return Float32Array.from(x, (v, i) => {
        const slot = s[Math.floor(i / 2)];
        return v + (slot.role === 'text' ? 10 : slot.role === 'image' ? 1 : 0);
      });
    };
    const guided = withGuidance(model, dualGuidance(1, { textScale: 2, imageScale: 3 }), 2);
    const out = await guided(f32(1, 2, 5, 6), 0.5);
    expect(calls).toHaveLength(1);
    expect(Array.from(calls[0].x)).toEqual([1, 2, 1, 2, 1, 2, 5, 6, 5, 6, 5, 6]);
    expect(calls[0].slots.map((s) => s.role)).toEqual(['text', 'image', 'uncond', 'text', 'image', 'uncond']);
    // eU + sI (eI - eU) + sT (eT - eI) = x + 3 * 1 + 2 * 9 = x + 21
    expectClose(out, [22, 23, 26, 27]);
    await expect(guided(f32(1, 2, 3), 0.5)).rejects.toThrow(/3 values, not a whole number of latents of 2/);
  });
});
