/**
 * One denoiser contract (k-diffusion external.py): a model is a function (x, sigma) -> x0, the prediction of the
 * clean latent, for a batch of latents [B, C, h, w] flattened. Networks that predict something else become
 * denoisers through an adapter here (epsilon, v-prediction, flow-matching velocity); guidance wraps a denoiser
 * that runs each batch element under its own condition.
 */
import type { BatchSlot, Guidance } from './guidance';

/** x [B, C, h, w] at noise level sigma -> predicted clean latent, same shape. */
export type Denoiser = (x: Float32Array, sigma: number) => Promise<Float32Array>;

/** A denoiser whose batch element k runs under the condition `slots[k]` (the family binds what a slot means). */
export type SlotDenoiser = (x: Float32Array, sigma: number, slots: readonly BatchSlot[]) => Promise<Float32Array>;

/** One network call: input x_in [B, C, h, w] at network time t, element k under slots[k] -> its raw prediction. */
export type NetworkCall = (xIn: Float32Array, t: number, slots: readonly BatchSlot[]) => Promise<Float32Array>;

function scaled(x: Float32Array, k: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * k;
  return out;
}

function checkPrediction(x: Float32Array, out: Float32Array): void {
  if (out.length !== x.length) throw new RangeError(`the network predicted ${out.length} values for a batch of ${x.length}`);
}

/**
 * An epsilon network trained on the variance-preserving process, in sigma space (k-diffusion
 * DiscreteEpsDDPMDenoiser, diffusers' Euler schedulers): it sees c_in x with c_in = 1 / sqrt(sigma^2 + 1)
 * (scale_model_input) at its own timestep, and x0 = x - sigma * eps.
 */
export function fromEpsilon(net: NetworkCall, timestep: (sigma: number) => number): SlotDenoiser {
  return async (x, sigma, slots) => {
    const eps = await net(scaled(x, 1 / Math.sqrt(sigma * sigma + 1)), timestep(sigma), slots);
    checkPrediction(x, eps);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] - sigma * eps[i];
    return out;
  };
}

/**
 * A v-prediction network (diffusers `prediction_type: v_prediction`; k-diffusion VDenoiser with sigma_data 1):
 * same input as epsilon, and x0 = x / (sigma^2 + 1) - v * sigma / sqrt(sigma^2 + 1).
 */
export function fromVPrediction(net: NetworkCall, timestep: (sigma: number) => number): SlotDenoiser {
  return async (x, sigma, slots) => {
    const k = Math.sqrt(sigma * sigma + 1);
    const v = await net(scaled(x, 1 / k), timestep(sigma), slots);
    checkPrediction(x, v);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] / (k * k) - (v[i] * sigma) / k;
    return out;
  };
}

/**
 * A flow-matching velocity network (rectified flow: x = (1 - sigma) x0 + sigma eps, v = eps - x0, as FLUX
 * predicts it): it sees x as is, and x0 = x - sigma * v.
 */
export function fromVelocity(net: NetworkCall, timestep: (sigma: number) => number): SlotDenoiser {
  return async (x, sigma, slots) => {
    const v = await net(x, timestep(sigma), slots);
    checkPrediction(x, v);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = x[i] - sigma * v[i];
    return out;
  };
}

/**
 * Guidance as a wrapper (k-diffusion's CFGDenoiser): each of the B latents in x (`latentSize` values each) runs
 * under every slot of `guidance` in one network batch [B x slots], and each latent's slot predictions combine
 * into its guided x0.
 */
export function withGuidance(model: SlotDenoiser, guidance: Guidance, latentSize: number): Denoiser {
  const per = guidance.slots.length;
  return async (x, sigma) => {
    if (x.length === 0 || x.length % latentSize !== 0) {
      throw new RangeError(`x has ${x.length} values, not a whole number of latents of ${latentSize}`);
    }
    const count = x.length / latentSize;
    const batch = new Float32Array(count * per * latentSize);
    const slots: BatchSlot[] = [];
    for (let v = 0; v < count; v++) {
      const latent = x.subarray(v * latentSize, (v + 1) * latentSize);
      guidance.slots.forEach((slot, s) => {
        batch.set(latent, (v * per + s) * latentSize);
        slots.push(slot);
      });
    }
    const out = await model(batch, sigma, slots);
    const guided = new Float32Array(x.length);
    for (let v = 0; v < count; v++) {
      guided.set(guidance.combine(out.subarray(v * per * latentSize, (v + 1) * per * latentSize), latentSize), v * latentSize);
    }
    return guided;
  };
}
