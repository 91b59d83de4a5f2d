import { cropMask, maskBounds, planGeometry, sameGeometry } from '../../../server/edit/geometry';

describe('working geometry', () => {
  it('finds the mask bounds (exclusive right/bottom)', () => {
    const m = new Float32Array(10 * 10);
    m[3 * 10 + 2] = 0.2;
    m[6 * 10 + 7] = 1;
    expect(maskBounds(m, 10, 10)).toEqual({ x0: 2, y0: 3, x1: 8, y1: 7 });
    expect(maskBounds(new Float32Array(4), 2, 2)).toBeNull();
  });

  it('works on the whole image at about the native area, sides multiples of the model multiple', () => {
    expect(planGeometry(128, 128, null, 128, 32)).toEqual({ x: 0, y: 0, width: 128, height: 128, workWidth: 128, workHeight: 128 });
    expect(planGeometry(320, 224, null, 128, 32)).toEqual({ x: 0, y: 0, width: 320, height: 224, workWidth: 160, workHeight: 96 });
  });

  it('crops context around a small mask on a large image', () => {
    const g = planGeometry(1024, 768, { x0: 500, y0: 400, x1: 540, y1: 440 }, 128, 32);
    expect(g.width).toBe(128);
    expect(g.height).toBe(128);
    expect(g.x).toBeLessThanOrEqual(500);
    expect(g.x + g.width).toBeGreaterThanOrEqual(540);
    expect([g.workWidth, g.workHeight]).toEqual([128, 128]);
  });

  it('crops a mask to the geometry, and compares geometries field by field', () => {
    const m = Float32Array.from({ length: 6 * 4 }, (_, i) => i);
    const g = { x: 2, y: 1, width: 3, height: 2, workWidth: 32, workHeight: 32 };
    expect(Array.from(cropMask(m, 6, g))).toEqual([8, 9, 10, 14, 15, 16]);
    expect(sameGeometry(g, { ...g })).toBe(true);
    expect(sameGeometry(g, { ...g, workWidth: 64 })).toBe(false);
  });
});
