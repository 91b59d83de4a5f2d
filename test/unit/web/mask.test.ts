/** The playground's mask brush (server/web/mask.ts): soft stamps, stroke-level compositing, erase, invert, export. */
import { beginStroke, brushFalloff, clearMask, createMask, fullRect, invertMask, isMaskEmpty, strokeTo, writeGrayscale, writeOverlay, type Brush, type Mask } from '../../../server/web/mask';

const at = (mask: Mask, x: number, y: number) => mask.data[y * mask.width + x];

function stroke(mask: Mask, brush: Brush, points: [number, number][]) {
  const s = beginStroke(mask, brush);
  return points.map(([x, y]) => strokeTo(s, x, y));
}

describe('brushFalloff', () => {
  it('is 1 inside radius * hardness, 0 from the radius on, and falls monotonically between', () => {
    expect(brushFalloff(0, 10, 0.5)).toBe(1);
    expect(brushFalloff(5, 10, 0.5)).toBe(1);
    expect(brushFalloff(10, 10, 0.5)).toBe(0);
    expect(brushFalloff(7.5, 10, 0.5)).toBeCloseTo(0.5);
    let last = 1;
    for (let d = 5; d <= 10; d += 0.25) {
      const f = brushFalloff(d, 10, 0.5);
      expect(f).toBeLessThanOrEqual(last);
      last = f;
    }
    expect(brushFalloff(9.99, 10, 1)).toBe(1); // hard: no fade
    expect(brushFalloff(0.5, 10, 0)).toBeLessThan(1); // fully soft: fades from the centre
  });
});

describe('strokes', () => {
  const soft: Brush = { radius: 6, hardness: 0.3, mode: 'paint' };

  it('paints full coverage at the centre, partial values at the edge, nothing outside, and reports the changed rectangle', () => {
    const mask = createMask(32, 32);
    const [dirty] = stroke(mask, soft, [[16, 16]]);
    expect(at(mask, 16, 16)).toBe(255);
    expect(at(mask, 0, 0)).toBe(0);
    expect(at(mask, 16, 23)).toBe(0);
    const edge = Array.from({ length: 32 }, (_, x) => at(mask, x, 16)).filter((v) => v > 0 && v < 255);
    expect(edge.length).toBeGreaterThan(0);
    expect(dirty).toEqual({ x: 10, y: 10, width: 12, height: 12 });
  });

  it('does not build up soft edges within one stroke (dense stamps), but a second stroke adds over the first', () => {
    const once = createMask(32, 32);
    stroke(once, soft, [[16, 16]]);
    // back and forth over the same spots: each pixel keeps its strongest coverage, nothing accumulates
    const there = createMask(32, 32);
    stroke(there, soft, [[16, 16], [17, 16]]);
    const andBack = createMask(32, 32);
    stroke(andBack, soft, [[16, 16], [17, 16], [16, 16], [17, 16], [16, 16]]);
    expect(andBack.data).toEqual(there.data);
    const twice = createMask(32, 32);
    stroke(twice, soft, [[16, 16]]);
    stroke(twice, soft, [[16, 16]]);
    const v = at(once, 16, 21);
    expect(v).toBeGreaterThan(0);
    expect(at(twice, 16, 21)).toBe(v + Math.round((v * (255 - v)) / 255));
  });

  it('covers the segment between two points without gaps', () => {
    const mask = createMask(64, 16);
    stroke(mask, { radius: 3, hardness: 1, mode: 'paint' }, [[4, 8], [60, 8]]);
    for (let x = 4; x <= 60; x++) expect(at(mask, x, 8)).toBe(255);
  });

  it('erases with the same brush, clips at the borders, and ignores stamps fully outside', () => {
    const mask = createMask(16, 16);
    mask.data.fill(255);
    const [dirty] = stroke(mask, { radius: 4, hardness: 1, mode: 'erase' }, [[0, 0]]);
    expect(at(mask, 0, 0)).toBe(0);
    expect(at(mask, 15, 15)).toBe(255);
    expect(dirty).toEqual({ x: 0, y: 0, width: 4, height: 4 });
    expect(stroke(mask, soft, [[-50, -50]])).toEqual([null]);
  });

  it('refuses a brush without a radius and a mask without pixels', () => {
    expect(() => beginStroke(createMask(4, 4), { radius: 0, hardness: 1, mode: 'paint' })).toThrow(/radius must be positive/);
    expect(() => createMask(0, 4)).toThrow(/positive integer size/);
  });
});

describe('clear, invert, export', () => {
  it('inverts and clears, and knows when nothing is painted', () => {
    const mask = createMask(4, 2);
    expect(isMaskEmpty(mask)).toBe(true);
    mask.data[3] = 200;
    invertMask(mask);
    expect(Array.from(mask.data)).toEqual([255, 255, 255, 55, 255, 255, 255, 255]);
    expect(isMaskEmpty(mask)).toBe(false);
    clearMask(mask);
    expect(isMaskEmpty(mask)).toBe(true);
  });

  it('writes opaque grayscale RGBA for the upload and a one-colour overlay with the mask as alpha', () => {
    const mask = createMask(2, 2);
    mask.data.set([0, 128, 255, 7]);
    const gray = new Uint8ClampedArray(16);
    writeGrayscale(mask, gray);
    expect(Array.from(gray)).toEqual([0, 0, 0, 255, 128, 128, 128, 255, 255, 255, 255, 255, 7, 7, 7, 255]);
    const overlay = new Uint8ClampedArray(8);
    writeOverlay(mask, { x: 1, y: 0, width: 1, height: 2 }, [1, 2, 3], overlay);
    expect(Array.from(overlay)).toEqual([1, 2, 3, 128, 1, 2, 3, 7]);
    expect(() => writeOverlay(mask, fullRect(mask), [0, 0, 0], overlay)).toThrow(/expected 16 bytes/);
  });
});
