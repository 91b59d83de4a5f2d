import {
  applyToPoint,
  boundsOf,
  invert,
  isAxisAligned,
  multiply,
  overlapArea,
  pngSize,
  rotationDegrees,
  translation,
  type Transform,
} from '../../../plugin-figma/src/geometry';
import { maskEffects, maskPaint, maskPaints, type PaintLike } from '../../../plugin-figma/src/mask-paint';
import { fakePng, rotated } from './fake-figma';

function close(a: Transform, b: Transform): void {
  for (let r = 0; r < 2; r++) for (let c = 0; c < 3; c++) expect(a[r][c]).toBeCloseTo(b[r][c], 9);
}

describe('transforms', () => {
  it('multiplies in Figma order (apply B first, then A) and inverts', () => {
    const A = rotated(10, 20, 30);
    const B = translation(5, -7);
    const p = applyToPoint(multiply(A, B), 1, 2);
    const q = applyToPoint(A, 6, -5);
    expect(p.x).toBeCloseTo(q.x, 9);
    expect(p.y).toBeCloseTo(q.y, 9);
    close(multiply(A, invert(A)), translation(0, 0));
    close(multiply(invert(B), B), translation(0, 0));
  });

  it('refuses to invert a degenerate transform', () => {
    expect(() => invert([[0, 0, 1], [0, 0, 1]])).toThrow(/no area/);
  });

  it('reads rotation as Figma shows it (counter-clockwise positive) and accepts flips as axis-aligned', () => {
    expect(rotationDegrees(rotated(0, 0, 30))).toBe(30);
    expect(rotationDegrees(rotated(0, 0, -45))).toBe(-45);
    expect(isAxisAligned(rotated(0, 0, 30))).toBe(false);
    expect(isAxisAligned(rotated(0, 0, 90))).toBe(false);
    expect(isAxisAligned([[-1, 0, 100], [0, 1, 0]])).toBe(true);
    expect(isAxisAligned(translation(3, 4))).toBe(true);
  });

  it('bounds a rotated box and measures overlaps', () => {
    const b = boundsOf(rotated(0, 0, 90), 100, 50); // counter-clockwise: the box goes up
    expect(b.x).toBeCloseTo(0, 9);
    expect(b.y).toBeCloseTo(-100, 9);
    expect(b.width).toBeCloseTo(50, 9);
    expect(b.height).toBeCloseTo(100, 9);
    expect(overlapArea({ x: 0, y: 0, width: 10, height: 10 }, { x: 5, y: 5, width: 10, height: 10 })).toBe(25);
    expect(overlapArea({ x: 0, y: 0, width: 10, height: 10 }, { x: 10, y: 0, width: 10, height: 10 })).toBe(0);
  });

  it('reads a PNG header and rejects other bytes', () => {
    expect(pngSize(fakePng(321, 123))).toEqual({ width: 321, height: 123 });
    expect(pngSize(new Uint8Array([1, 2, 3]))).toBeNull();
    expect(pngSize(new TextEncoder().encode('GIF89a............................'))).toBeNull();
  });
});

describe('mask paints', () => {
  it('turns every visible paint white and keeps its transparency', () => {
    const solid = maskPaint({ type: 'SOLID', color: { r: 1, g: 0, b: 0 }, opacity: 0.4 } as PaintLike);
    expect(solid).toEqual({ type: 'SOLID', color: { r: 1, g: 1, b: 1 }, opacity: 0.4, visible: true });
    const gradient = maskPaint({
      type: 'GRADIENT_LINEAR',
      gradientTransform: [[1, 0, 0], [0, 1, 0]],
      gradientStops: [
        { position: 0, color: { r: 0, g: 0, b: 1, a: 1 } },
        { position: 1, color: { r: 0, g: 0, b: 1, a: 0 } },
      ],
    });
    expect(gradient).toMatchObject({
      type: 'GRADIENT_LINEAR',
      gradientStops: [
        { position: 0, color: { r: 1, g: 1, b: 1, a: 1 } },
        { position: 1, color: { r: 1, g: 1, b: 1, a: 0 } },
      ],
      opacity: 1,
    });
    expect(maskPaint({ type: 'IMAGE', opacity: 0.5 })).toEqual({ type: 'SOLID', color: { r: 1, g: 1, b: 1 }, opacity: 0.5, visible: true });
    expect(maskPaints([{ type: 'SOLID', visible: false }, { type: 'SOLID' }])).toHaveLength(1);
  });

  it('keeps layer blurs (soft edges) and drops shadows and other effects', () => {
    const effects = [
      { type: 'DROP_SHADOW', visible: true },
      { type: 'LAYER_BLUR', visible: true, radius: 8 },
      { type: 'LAYER_BLUR', visible: false, radius: 2 },
      { type: 'BACKGROUND_BLUR', visible: true },
      { type: 'INNER_SHADOW', visible: true },
    ];
    expect(maskEffects(effects)).toEqual([{ type: 'LAYER_BLUR', visible: true, radius: 8 }]);
  });
});
