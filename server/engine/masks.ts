/**
 * Soft masks: Float32Array [h * w], row-major, values in [0, 1] (1 = editable). Width and height are
 * always passed explicitly; every function returns a new array.
 */

function checkMask(mask: Float32Array, w: number, h: number): void {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) {
    throw new RangeError(`mask size must be positive integers, got ${w}x${h}`);
  }
  if (mask.length !== w * h) throw new RangeError(`mask has ${mask.length} values, expected ${w}x${h} = ${w * h}`);
}

/** Area-average a pixel mask down by an integer factor (e.g. 8: image -> latent grid). */
export function downsampleMask(mask: Float32Array, w: number, h: number, factor: number): Float32Array {
  checkMask(mask, w, h);
  if (!Number.isInteger(factor) || factor < 1) throw new RangeError(`factor must be an integer >= 1, got ${factor}`);
  if (w % factor !== 0 || h % factor !== 0) {
    throw new RangeError(`mask size ${w}x${h} is not divisible by ${factor}`);
  }
  const ow = w / factor;
  const oh = h / factor;
  const out = new Float32Array(ow * oh);
  const area = factor * factor;
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      let sum = 0;
      for (let y = oy * factor; y < (oy + 1) * factor; y++) {
        for (let x = ox * factor; x < (ox + 1) * factor; x++) sum += mask[y * w + x];
      }
      out[oy * ow + ox] = sum / area;
    }
  }
  return out;
}

/**
 * One separable pass of a max-convolution along rows or columns: out(i) = max_d weights[|d|] * src(i + d),
 * |d| < weights.length, samples outside the image ignored. Values are assumed >= 0 (masks).
 */
function maxPass(src: Float32Array, w: number, h: number, weights: Float64Array, alongRows: boolean): Float32Array {
  const out = new Float32Array(src.length);
  const n = alongRows ? w : h; // length of each line
  const lines = alongRows ? h : w;
  const step = alongRows ? 1 : w;
  const reach = weights.length - 1;
  for (let l = 0; l < lines; l++) {
    const base = alongRows ? l * w : l;
    for (let i = 0; i < n; i++) {
      let best = 0;
      const lo = Math.max(0, i - reach);
      const hi = Math.min(n - 1, i + reach);
      for (let j = lo; j <= hi; j++) {
        const v = weights[Math.abs(j - i)] * src[base + j * step];
        if (v > best) best = v;
      }
      out[base + i * step] = best;
    }
  }
  return out;
}

/**
 * Grey dilation (max filter) with a square kernel of odd size (7 -> radius 3). On binary masks this is
 * scipy's binary_dilation with ones((k, k)) as Blended Latent Diffusion uses; pixels outside are ignored.
 */
export function dilateMask(mask: Float32Array, w: number, h: number, kernel: number): Float32Array {
  checkMask(mask, w, h);
  if (!Number.isInteger(kernel) || kernel < 1 || kernel % 2 === 0) {
    throw new RangeError(`dilation kernel must be an odd integer >= 1, got ${kernel}`);
  }
  const flat = new Float64Array((kernel - 1) / 2 + 1).fill(1); // square max is separable: rows, then columns
  return maxPass(maxPass(mask, w, h, flat, true), w, h, flat, false);
}

/** Normalised Gaussian taps for offsets 0..ceil(radius), std radius / 2. */
function gaussianTaps(radius: number): Float64Array {
  const reach = Math.ceil(radius);
  const sd = radius / 2;
  const taps = new Float64Array(reach + 1);
  let sum = 0;
  for (let d = 0; d <= reach; d++) {
    taps[d] = Math.exp(-(d * d) / (2 * sd * sd));
    sum += d === 0 ? taps[d] : 2 * taps[d];
  }
  for (let d = 0; d <= reach; d++) taps[d] /= sum;
  return taps;
}

/** One separable blur pass with edge replication, so a uniform mask (all ones) stays uniform at the borders. */
function blurPass(src: Float32Array, w: number, h: number, taps: Float64Array, alongRows: boolean): Float32Array {
  const out = new Float32Array(src.length);
  const n = alongRows ? w : h;
  const lines = alongRows ? h : w;
  const step = alongRows ? 1 : w;
  const reach = taps.length - 1;
  for (let l = 0; l < lines; l++) {
    const base = alongRows ? l * w : l;
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let d = -reach; d <= reach; d++) {
        const j = Math.min(n - 1, Math.max(0, i + d));
        acc += taps[Math.abs(d)] * src[base + j * step];
      }
      out[base + i * step] = acc;
    }
  }
  return out;
}

/** Soften mask edges with a separable Gaussian blur (std radius / 2, cut at ceil(radius)), clamped to [0, 1]. */
export function featherMask(mask: Float32Array, w: number, h: number, radius: number): Float32Array {
  checkMask(mask, w, h);
  if (!(radius >= 0)) throw new RangeError(`feather radius must be >= 0, got ${radius}`);
  if (radius === 0) return Float32Array.from(mask);
  const taps = gaussianTaps(radius);
  const out = blurPass(blurPass(mask, w, h, taps, true), w, h, taps, false);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, out[i]));
  return out;
}

/**
 * Blended Latent Diffusion's progressive mask shrinking (engine.md 5a, k = 3): [dilate 7, dilate 5,
 * dilate 3, original], largest first, so thin masks still take effect at high noise.
 */
export function progressiveMasks(mask: Float32Array, w: number, h: number): Float32Array[] {
  checkMask(mask, w, h);
  return [dilateMask(mask, w, h, 7), dilateMask(mask, w, h, 5), dilateMask(mask, w, h, 3), Float32Array.from(mask)];
}

/**
 * The mask BLD uses at `step` of `totalSteps` (the steps actually run): interval = floor(total / len) + 1,
 * index = floor(step / interval). With 50 steps and 4 masks: 0-12, 13-25, 26-38, 39-49.
 */
export function maskForStep<M>(masks: readonly M[], step: number, totalSteps: number): M {
  if (masks.length === 0) throw new RangeError('maskForStep needs at least one mask');
  if (!Number.isInteger(step) || step < 0 || step >= totalSteps) {
    throw new RangeError(`step must be an integer in [0, ${totalSteps}), got ${step}`);
  }
  const interval = Math.floor(totalSteps / masks.length) + 1;
  return masks[Math.floor(step / interval)];
}

/**
 * Widen a mask from local (spread 0: unchanged) to global (spread 1: all ones).
 *
 * A grey dilation by a soft square element: a flat core of reach/2 pixels, then a linear ramp to 0 over
 * another reach/2 pixels, with reach = (max(w, h) / 2) * spread / (1 - spread) (0.1 -> ~L/18, 0.5 -> L/2,
 * 0.8 -> 2L, which covers the whole mask when it has a pixel at 1). Each value is
 * max over q of m(q) * g(|dx|) * g(|dy|); the element g only widens as spread grows, so the result is
 * pointwise non-decreasing in spread and never below the mask. Cost O(w * h * reach): meant for
 * latent-size masks.
 */
export function spreadMask(mask: Float32Array, w: number, h: number, spread: number): Float32Array {
  checkMask(mask, w, h);
  if (!(spread >= 0 && spread <= 1)) throw new RangeError(`spread must be in [0, 1], got ${spread}`);
  if (spread === 0) return Float32Array.from(mask);
  if (spread === 1) return new Float32Array(w * h).fill(1);
  const reach = ((Math.max(w, h) / 2) * spread) / (1 - spread);
  const core = reach / 2;
  const extent = Math.min(Math.ceil(reach), Math.max(w, h) - 1); // no offset beyond the image matters
  const g = new Float64Array(extent + 1);
  for (let d = 0; d <= extent; d++) g[d] = d <= core ? 1 : Math.max(0, (reach - d) / (reach - core));
  return maxPass(maxPass(mask, w, h, g, true), w, h, g, false);
}

/** 1 where the mask is at least `threshold`, else 0 (Blended Latent Diffusion's binary latent masks). */
export function binarizeMask(mask: Float32Array, threshold = 0.5): Float32Array {
  return Float32Array.from(mask, (v) => (v >= threshold ? 1 : 0));
}

export interface LocalityOptions {
  locality: 'guidance' | 'blend' | 'both';
  spread: number;
  progressiveShrink: boolean;
  /** threshold each latent mask at 0.5 (BLD) instead of keeping the area-averaged soft values */
  binaryMasks: boolean;
}

/** Where an edit may act, on the latent grid: per region for guidance, blended for BLD, and their reach. */
export interface LocalityMasks {
  /** one per region for masked guidance; null = everywhere */
  guidance: (Float32Array | null)[];
  /** BLD's masks, largest first (progressive shrinking), or null when nothing is blended */
  blend: Float32Array[] | null;
  /** the union of the region masks after spread, or null when a region covers everything */
  reach: Float32Array | null;
}

/**
 * The latent masks of an edit from its regions' pixel masks at the working size (`w` x `h`, `factor` pixels per
 * latent cell). Several regions always guide with their own masks, also in 'blend' mode (or every instruction
 * would act everywhere); blending needs every region masked.
 */
export function localityMasks(regionMasks: readonly (Float32Array | null)[], w: number, h: number, factor: number, o: LocalityOptions): LocalityMasks {
  const [lw, lh] = [w / factor, h / factor];
  const latent = regionMasks.map((m) => {
    if (!m) return null;
    const down = downsampleMask(m, w, h, factor);
    return spreadMask(o.binaryMasks ? binarizeMask(down) : down, lw, lh, o.spread);
  });
  const guidance = o.locality === 'blend' && latent.length === 1 ? [null] : latent;
  if (latent.some((m) => m === null)) return { guidance, blend: null, reach: null };
  const reach = new Float32Array(lw * lh);
  for (const m of latent) for (let i = 0; i < reach.length; i++) reach[i] = Math.max(reach[i], m![i]);
  const blend = o.locality === 'guidance' ? null : o.progressiveShrink ? progressiveMasks(reach, lw, lh) : [reach];
  return { guidance, blend, reach };
}
