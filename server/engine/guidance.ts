/**
 * InstructPix2Pix dual classifier-free guidance (engine.md 1.6), generalised to R regions, each with its
 * own instruction and soft mask (LayerDiffusion-style simultaneous edits, DESIGN.md 4):
 *
 *   out = eU + sI * (eI - eU) + sum_r m_r * sT * (eT_r - eI)
 *
 * With R = 1 and no mask this is diffusers' eU + sT * (eT - eI) + sI * (eI - eU). The weights on
 * (eT_1..eT_R, eI, eU) sum to 1 at every pixel for any masks, so combining x0 predictions (k-diffusion's
 * CFGDenoiser) gives the same result as combining eps predictions: x0 = x - sigma * eps is affine in eps
 * (and in v, for v-prediction and flow-matching velocity models). denoiser.withGuidance applies a Guidance.
 */

/** One slot of the network batch for one variation: which prompt, and whether the image condition is in it. */
export interface BatchSlot {
  role: 'text' | 'image' | 'uncond';
  /** Region whose instruction embedding goes here; null = the empty prompt "". */
  prompt: number | null;
  /** True where the image condition is left out (InstructPix2Pix: zeros, not an encoded black image). */
  zeroImage: boolean;
}

/** How a family guides: the batch one variation needs, and how its predictions combine into one. */
export interface Guidance {
  readonly slots: readonly BatchSlot[];
  /** one variation's predictions [slots x n] (flattened) -> the guided prediction [n] */
  combine(out: Float32Array, n: number): Float32Array;
}

/**
 * The batch order, in one place: [text_1 .. text_R, image-only, unconditional], i.e. text embeddings
 * [cond_1..cond_R, empty, empty] and image latents [c, .. (R+1 times) .., 0]. R = 1 is diffusers' order.
 */
export function pix2pixBatchLayout(regions: number): BatchSlot[] {
  checkRegions(regions);
  const slots: BatchSlot[] = [];
  for (let r = 0; r < regions; r++) slots.push({ role: 'text', prompt: r, zeroImage: false });
  slots.push({ role: 'image', prompt: null, zeroImage: false });
  slots.push({ role: 'uncond', prompt: null, zeroImage: true });
  return slots;
}

/** Guidance weights; masks are per region, [H*W] in [0, 1] broadcast over channels, null = everywhere. */
export interface GuidanceOptions {
  textScale: number;
  imageScale: number;
  masks?: (Float32Array | null)[];
}

function checkRegions(regions: number): void {
  if (!Number.isInteger(regions) || regions < 1) {
    throw new RangeError(`regions must be an integer >= 1, got ${regions}`);
  }
}

/**
 * Combine one variation's UNet outputs `out` ([(R+2), C, H, W] flattened; `sampleSize` = C*H*W) into the
 * guided prediction [C, H, W]. For several variations pass each one's `subarray`.
 */
export function combineGuidance(
  out: Float32Array,
  regions: number,
  sampleSize: number,
  opts: GuidanceOptions,
): Float32Array {
  const layout = pix2pixBatchLayout(regions);
  if (!Number.isInteger(sampleSize) || sampleSize < 1) {
    throw new RangeError(`sampleSize must be an integer >= 1, got ${sampleSize}`);
  }
  if (out.length !== layout.length * sampleSize) {
    throw new RangeError(
      `guidance input has ${out.length} values, expected ${layout.length} x ${sampleSize} (${regions} regions + 2)`,
    );
  }
  const masks = opts.masks ?? [];
  if (opts.masks && masks.length !== regions) {
    throw new RangeError(`got ${masks.length} masks for ${regions} regions`);
  }
  for (let r = 0; r < masks.length; r++) {
    const m = masks[r];
    if (m && (m.length === 0 || sampleSize % m.length !== 0)) {
      throw new RangeError(`mask ${r} has ${m.length} values, which does not divide the sample size ${sampleSize}`);
    }
  }
  const iOff = layout.findIndex((s) => s.role === 'image') * sampleSize;
  const uOff = layout.findIndex((s) => s.role === 'uncond') * sampleSize;
  const { textScale: sT, imageScale: sI } = opts;

  const res = new Float64Array(sampleSize);
  for (let k = 0; k < sampleSize; k++) res[k] = out[uOff + k] + sI * (out[iOff + k] - out[uOff + k]);
  layout.forEach((slot, b) => {
    if (slot.role !== 'text') return;
    const tOff = b * sampleSize;
    const m = slot.prompt === null ? null : (masks[slot.prompt] ?? null);
    if (m === null) {
      for (let k = 0; k < sampleSize; k++) res[k] += sT * (out[tOff + k] - out[iOff + k]);
    } else {
      const hw = m.length; // [C, H, W]: the same H*W mask for every channel
      for (let c = 0; c < sampleSize; c += hw) {
        for (let p = 0; p < hw; p++) res[c + p] += m[p] * sT * (out[tOff + c + p] - out[iOff + c + p]);
      }
    }
  });
  return Float32Array.from(res);
}

/** InstructPix2Pix's dual classifier-free guidance over R regions (the formula at the top of this file). */
export function dualGuidance(regions: number, opts: GuidanceOptions): Guidance {
  return { slots: pix2pixBatchLayout(regions), combine: (out, n) => combineGuidance(out, regions, n, opts) };
}

/**
 * Classifier-free guidance with the empty prompt as the negative (FLUX.2 klein base models: diffusers'
 * neg + s * (cond - neg), applied only when s > 1), generalised to R regions with soft masks like dualGuidance:
 *
 *   out = eU + sum_r m_r * s * (eT_r - eU)
 *
 * Outside every mask this is the empty-prompt prediction, which still reads the source as reference tokens: the
 * model reproducing its input there is the locality a mask asks for. With one region, no mask and s <= 1 (as the
 * pipeline, no guidance) the batch is the instruction alone; a distilled model passes s = 1 (it runs unguided).
 * Batch order: [text_1 .. text_R, uncond].
 */
export function classifierFreeGuidance(regions: number, scale: number, masks: readonly (Float32Array | null)[] = []): Guidance {
  checkRegions(regions);
  if (masks.length > 0 && masks.length !== regions) throw new RangeError(`got ${masks.length} masks for ${regions} regions`);
  const s = scale > 1 ? scale : 1;
  const textSlots: BatchSlot[] = Array.from({ length: regions }, (_, r) => ({ role: 'text', prompt: r, zeroImage: false }));
  if (regions === 1 && s === 1 && !masks[0]) return { slots: textSlots, combine: (out, n) => Float32Array.from(out.subarray(0, n)) };
  const slots: BatchSlot[] = [...textSlots, { role: 'uncond', prompt: null, zeroImage: false }];
  return {
    slots,
    combine(out, n) {
      if (out.length !== slots.length * n) throw new RangeError(`guidance input has ${out.length} values, expected ${slots.length} x ${n}`);
      const u = regions * n;
      const res = new Float64Array(n);
      for (let k = 0; k < n; k++) res[k] = out[u + k];
      for (let r = 0; r < regions; r++) {
        const m = masks[r] ?? null;
        if (m && (m.length === 0 || n % m.length !== 0)) throw new RangeError(`mask ${r} has ${m.length} values, which does not divide ${n}`);
        for (let k = 0; k < n; k++) res[k] += (m ? m[k % m.length] : 1) * s * (out[r * n + k] - out[u + k]);
      }
      return Float32Array.from(res);
    },
  };
}
