/**
 * Explicit, per-job randomness. A NoiseSource is created from the job's seed and passed to whoever needs
 * noise; there is no module-level generator and Math.random is never used.
 *
 * seededNoise: xoshiro128** (32-bit integer ops via Math.imul, so no platform-dependent arithmetic),
 * seeded through a splitmix-style counter + murmur3 finaliser, normals by Box-Muller. Math.log/cos/sin are
 * V8's own fdlibm ports (not the platform libm), so the same seed gives the same bytes on every Node machine.
 * Torch's RNG cannot be matched; for parity with Python use injectedNoise.
 */

/** Source of standard normal noise; each call continues the stream. */
export interface NoiseSource {
  normal(length: number): Float32Array;
}

const GOLDEN = 0x9e3779b9;
const TWO_POW_32 = 4294967296;

/** murmur3's 32-bit finaliser: a bijective avalanche mix. */
function fmix32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Four xoshiro128 state words from a seed: successive golden-ratio counter values, each mixed. */
function seedState(seed: number): Uint32Array {
  // use all 53 bits of a safe integer: the high word perturbs the counter's start
  const lo = seed >>> 0; // ToUint32: seed mod 2^32, two's complement for negatives
  const hi = Math.floor(seed / TWO_POW_32) >>> 0;
  let counter = (lo ^ fmix32(hi)) >>> 0;
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    counter = (counter + GOLDEN) >>> 0;
    s[i] = fmix32(counter);
  }
  // fmix32 is a bijection and the four counters differ, so at most one word is 0: never the all-zero state
  return s;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** One xoshiro128** output; advances `s` in place (the state belongs to one NoiseSource). */
function nextU32(s: Uint32Array): number {
  const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
  const t = (s[1] << 9) >>> 0;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return result;
}

/** Seeded standard normal noise; `seed` is any safe integer. Chunking does not change the stream. */
export function seededNoise(seed: number): NoiseSource {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const state = seedState(seed);
  let spare = NaN; // Box-Muller's second value, kept so normal(3)+normal(5) == normal(8)
  return {
    normal(length: number): Float32Array {
      if (!Number.isInteger(length) || length < 0) {
        throw new RangeError(`length must be an integer >= 0, got ${length}`);
      }
      const out = new Float32Array(length);
      let i = 0;
      if (length > 0 && !Number.isNaN(spare)) {
        out[i++] = spare;
        spare = NaN;
      }
      while (i < length) {
        const u1 = (nextU32(state) + 1) / TWO_POW_32; // (0, 1]: log is finite
        const u2 = nextU32(state) / TWO_POW_32; // [0, 1)
        const r = Math.sqrt(-2 * Math.log(u1));
        const theta = 2 * Math.PI * u2;
        out[i++] = r * Math.cos(theta);
        if (i < length) out[i++] = r * Math.sin(theta);
        else spare = r * Math.sin(theta);
      }
      return out;
    },
  };
}

/** Replays given noise arrays in order (tests, parity with Python); each call must ask for the next one's length. */
export function injectedNoise(chunks: readonly Float32Array[]): NoiseSource {
  let next = 0;
  return {
    normal(length: number): Float32Array {
      if (next >= chunks.length) {
        throw new Error(`injected noise exhausted: all ${chunks.length} chunks used, asked for ${length} more values`);
      }
      const chunk = chunks[next];
      if (chunk.length !== length) {
        throw new RangeError(`injected noise chunk ${next} has ${chunk.length} values, asked for ${length}`);
      }
      next++;
      return Float32Array.from(chunk); // a copy, so the consumer cannot alter the caller's arrays
    },
  };
}

/**
 * One source for a batch of latents, each with its own stream: a draw of `length` values takes length / k from
 * each source in turn, so latent v always gets source v's values, whatever the batch (variation k keeps its seed).
 */
export function batchNoise(sources: readonly NoiseSource[]): NoiseSource {
  if (sources.length === 0) throw new RangeError('batchNoise needs at least one source');
  return {
    normal(length: number): Float32Array {
      if (!Number.isInteger(length) || length < 0 || length % sources.length !== 0) {
        throw new RangeError(`length must be a multiple of the batch (${sources.length}), got ${length}`);
      }
      const each = length / sources.length;
      const out = new Float32Array(length);
      sources.forEach((s, k) => out.set(s.normal(each), k * each));
      return out;
    },
  };
}

/**
 * `first` as the first draw (which must ask for exactly its length), then `then`'s stream: a given initial noise
 * (the CLI's --init-noise) with the seeded noise of later steps.
 */
export function startingWith(first: Float32Array, then: NoiseSource): NoiseSource {
  let used = false;
  return {
    normal(length: number): Float32Array {
      if (used) return then.normal(length);
      if (length !== first.length) throw new RangeError(`the given initial noise has ${first.length} values, the edit draws ${length}`);
      used = true;
      return Float32Array.from(first);
    },
  };
}
