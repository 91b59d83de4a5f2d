/**
 * Large layers keep their detail. The model works at about its native area, so on a layer several times larger
 * the decoded edit, upsampled, lacks everything finer than the working resolution. What it lacks is the source's
 * own luma detail D = luma(source - up(down(source))), where down is the resampling the engine saw; it goes back
 * on top of the upsampled edit (detail transfer), with a guard where the edit did not keep the source's structure:
 *
 *   gate     = 1 - (1 - followed) * edge        (luma at the working resolution, then upsampled)
 *   edge     = |grad S|^2 / (|grad S|^2 + 64)    whether the source S has an edge there (1) or is flat (0)
 *   followed = max(0, corr(E, S)) over 5 x 5     whether the edit E still has that edge (any contrast)
 *   out      = up(E) + gate * D + (1 - gate) * clip(D, +-T),   T = 2 * median |D| (the texture's amplitude)
 *
 * - Flat source at the working resolution (fine texture averages out there): gate 1, the texture comes back.
 * - An edge the edit kept (a recolour, an unchanged region): gate 1, the edge is sharp again.
 * - An edge the edit removed, moved or inverted: gate 0, only a texture-sized part of the old edge's detail is
 *   added, so a removed outline comes back at most at the texture's amplitude, while texture right next to
 *   edges the model blurred survives.
 * The detail is luma only, added to all three channels: chroma is low-frequency in practice and would carry the
 * old colour into a recoloured region. Where the edit's colour is within the texture's amplitude of 0 or 255,
 * it is pulled in by that amplitude first, so the texture is not clipped off.
 *
 * Chosen over plain detail transfer (gate 1: removed outlines come back at full contrast), the gate alone
 * (nothing where it closes: texture near edges is lost) and tiled refinement at native resolution (a model run
 * per tile, seams, and a model trained at one size); figures in bench/RESULTS.md ("Large layers").
 */
import { resizeImage, resizeMask, type RgbaImage } from '../imaging/image';

/** |grad|^2 at which a source pixel counts half as an edge (a step of ~8 levels per working pixel) */
const EDGE = 64;
/** correlation window radius at the working resolution */
const RADIUS = 2;
/** texture amplitude T in multiples of the median |detail| */
const TEXTURE = 2;

/** Rec. 601 luma of an RGBA image, [h * w] in 0..255. */
export function lumaPlane(img: RgbaImage): Float32Array {
  const n = img.width * img.height;
  const d = img.data;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 0.299 * d[i * 4] + 0.587 * d[i * 4 + 1] + 0.114 * d[i * 4 + 2];
  return out;
}

/** A separable mean along rows or columns over windows of radius r, clipped at the borders. */
function windowPass(src: Float32Array, w: number, h: number, r: number, alongRows: boolean): Float32Array {
  const out = new Float32Array(src.length);
  const n = alongRows ? w : h;
  const lines = alongRows ? h : w;
  const stride = alongRows ? 1 : w;
  for (let l = 0; l < lines; l++) {
    const base = alongRows ? l * w : l;
    for (let i = 0; i < n; i++) {
      const lo = i - r < 0 ? 0 : i - r;
      const hi = i + r > n - 1 ? n - 1 : i + r;
      let acc = 0;
      for (let j = lo; j <= hi; j++) acc += src[base + j * stride];
      out[base + i * stride] = acc / (hi - lo + 1);
    }
  }
  return out;
}

const windowMean = (src: Float32Array, w: number, h: number, r: number) => windowPass(windowPass(src, w, h, r, true), w, h, r, false);

/** The gate (see the file comment) of the edit's luma `edit` on the source's luma `source`, both w x h. */
export function structureGate(edit: Float32Array, source: Float32Array, w: number, h: number): Float32Array {
  const n = w * h;
  if (edit.length !== n || source.length !== n) throw new RangeError(`luma planes of ${edit.length} and ${source.length} values for ${w}x${h}`);
  const ss = new Float32Array(n);
  const ee = new Float32Array(n);
  const se = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    ss[i] = source[i] * source[i];
    ee[i] = edit[i] * edit[i];
    se[i] = source[i] * edit[i];
  }
  const [mS, mE, mSS, mEE, mSE] = [source, edit, ss, ee, se].map((p) => windowMean(p, w, h, RADIUS));
  const gate = new Float32Array(n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const gx = (source[y * w + Math.min(w - 1, x + 1)] - source[y * w + Math.max(0, x - 1)]) / 2;
      const gy = (source[Math.min(h - 1, y + 1) * w + x] - source[Math.max(0, y - 1) * w + x]) / 2;
      const g2 = gx * gx + gy * gy;
      const varS = Math.max(0, mSS[i] - mS[i] * mS[i]);
      const varE = Math.max(0, mEE[i] - mE[i] * mE[i]);
      const followed = Math.min(1, Math.max(0, (mSE[i] - mS[i] * mE[i]) / (Math.sqrt(varS * varE) + 1)));
      gate[i] = 1 - (1 - followed) * (g2 / (g2 + EDGE));
    }
  }
  return gate;
}

/** The source's luma detail the working size cannot hold: luma(source) - luma(sourceUp), same size. */
export function highFrequencies(source: RgbaImage, sourceUp: RgbaImage): Float32Array {
  if (source.width !== sourceUp.width || source.height !== sourceUp.height) {
    throw new RangeError(`detail needs images of one size, got ${source.width}x${source.height} and ${sourceUp.width}x${sourceUp.height}`);
  }
  const a = source.data;
  const b = sourceUp.data;
  const out = new Float32Array(source.width * source.height);
  for (let i = 0; i < out.length; i++) {
    const k = i * 4;
    out[i] = 0.299 * (a[k] - b[k]) + 0.587 * (a[k + 1] - b[k + 1]) + 0.114 * (a[k + 2] - b[k + 2]);
  }
  return out;
}

/** The texture's amplitude T: twice the median |detail| (fine texture is small and everywhere; edges are large and rare). */
export function textureAmplitude(detail: Float32Array): number {
  const histogram = new Uint32Array(256);
  for (let i = 0; i < detail.length; i++) histogram[Math.min(255, Math.round(Math.abs(detail[i])))]++;
  let below = 0;
  let median = 0;
  while (median < 255 && below + histogram[median] < detail.length / 2) below += histogram[median++];
  return TEXTURE * median;
}

/** `detail` where the gate is open; where it is closed, only the part within +-t (in place). */
export function gateDetail(detail: Float32Array, gate: Float32Array, t: number): Float32Array {
  if (gate.length !== detail.length) throw new RangeError(`a gate of ${gate.length} values for ${detail.length} of detail`);
  for (let i = 0; i < detail.length; i++) {
    const d = detail[i];
    const g = gate[i];
    detail[i] = g * d + (1 - g) * (d > t ? t : d < -t ? -t : d);
  }
  return detail;
}

/**
 * `up` plus the luma `detail` on every channel. Colours within the texture's amplitude `t` of 0 or 255 are
 * pulled in by it first, so texture on a saturated colour is not clipped off (larger detail, an edge, may clip).
 */
export function addDetail(up: RgbaImage, detail: Float32Array, t: number): RgbaImage {
  const { width: w, height: h } = up;
  if (detail.length !== w * h) throw new RangeError(`${detail.length} values of detail for a ${w}x${h} image`);
  const a = Math.min(127, t);
  const src = up.data;
  const out = new Uint8Array(src);
  for (let i = 0; i < w * h; i++) {
    const d = detail[i];
    for (let c = i * 4; c < i * 4 + 3; c++) {
      const base = src[c] < a ? a : src[c] > 255 - a ? 255 - a : src[c];
      const v = Math.round(base + d);
      out[c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width: w, height: h, data: out };
}

/**
 * The decoded edit `work` back at the size of `sourceCrop`, with the source's detail where the edit kept the
 * structure. `sourceWork` is the crop at the working size (what the engine encoded). A crop that is not larger
 * than the working size has nothing to restore: plain resampling.
 */
export async function upsampleWithDetail(work: RgbaImage, sourceCrop: RgbaImage, sourceWork: RgbaImage): Promise<RgbaImage> {
  const { width, height } = sourceCrop;
  if (width * height <= work.width * work.height) return resizeImage(work, width, height);
  const [up, sourceUp] = await Promise.all([resizeImage(work, width, height), resizeImage(sourceWork, width, height)]);
  const gate = structureGate(lumaPlane(work), lumaPlane(sourceWork), work.width, work.height);
  const detail = highFrequencies(sourceCrop, sourceUp);
  const t = textureAmplitude(detail);
  return addDetail(up, gateDetail(detail, resizeMask(gate, work.width, work.height, width, height), t), t);
}
