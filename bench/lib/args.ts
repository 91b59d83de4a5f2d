/** Tiny flag parser for the benchmarks: --key value pairs with defaults, numbers parsed and checked. */
export function benchArgs<T extends Record<string, string | number | boolean>>(defaults: T): T {
  const out: Record<string, string | number | boolean> = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in defaults)) throw new Error(`unknown flag --${key} (known: ${Object.keys(defaults).map((k) => '--' + k).join(' ')})`);
    const d = defaults[key];
    if (typeof d === 'boolean') {
      out[key] = true;
      continue;
    }
    const raw = argv[++i];
    if (raw === undefined) throw new Error(`--${key} needs a value`);
    out[key] = typeof d === 'number' ? Number(raw) : raw;
    if (typeof d === 'number' && !Number.isFinite(out[key])) throw new Error(`--${key} must be a number, got ${raw}`);
  }
  return out as T;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export const round = (v: number, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;
