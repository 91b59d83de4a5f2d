/**
 * How a mask shape is painted for export: white, keeping every bit of transparency, on the black background
 * of the temporary mask frame. The exported PNG is then gray where the shape is soft (a layer blur, a
 * translucent fill, a gradient fading out, the layer's own opacity) and its red channel is the mask the
 * server reads (white = edit).
 *
 * Pure functions over structural paint types (Figma's `Paint`/`Effect` objects fit them), so the real host
 * and the test fake apply the same rules.
 */

interface ColorStopLike {
  readonly position: number;
  readonly color: { readonly r: number; readonly g: number; readonly b: number; readonly a: number };
}

/** The fields of Figma's paints this module reads. */
export interface PaintLike {
  readonly type: string;
  readonly visible?: boolean;
  readonly opacity?: number;
  readonly gradientTransform?: readonly (readonly number[])[];
  readonly gradientStops?: readonly ColorStopLike[];
}

export interface WhiteSolidPaint {
  readonly type: 'SOLID';
  readonly color: { readonly r: 1; readonly g: 1; readonly b: 1 };
  readonly opacity: number;
  readonly visible: true;
}

export interface WhiteGradientPaint {
  readonly type: 'GRADIENT_LINEAR' | 'GRADIENT_RADIAL' | 'GRADIENT_ANGULAR' | 'GRADIENT_DIAMOND';
  readonly gradientTransform: [[number, number, number], [number, number, number]];
  readonly gradientStops: { position: number; color: { r: 1; g: 1; b: 1; a: number } }[];
  readonly opacity: number;
  readonly visible: true;
}

export type MaskPaint = WhiteSolidPaint | WhiteGradientPaint;

const GRADIENTS = ['GRADIENT_LINEAR', 'GRADIENT_RADIAL', 'GRADIENT_ANGULAR', 'GRADIENT_DIAMOND'] as const;

function isGradientType(type: string): type is WhiteGradientPaint['type'] {
  return (GRADIENTS as readonly string[]).includes(type);
}

/**
 * The white version of one paint, or null for an invisible paint (dropped). Built field by field, so no
 * variable binding or blend mode of the original can bring its colour back. Image, video and pattern paints
 * become solid white at the paint's opacity (their own transparency is not kept).
 */
export function maskPaint(paint: PaintLike): MaskPaint | null {
  if (paint.visible === false) return null;
  const opacity = paint.opacity ?? 1;
  if (isGradientType(paint.type) && paint.gradientStops && paint.gradientTransform) {
    const t = paint.gradientTransform;
    return {
      type: paint.type,
      gradientTransform: [
        [t[0][0], t[0][1], t[0][2]],
        [t[1][0], t[1][1], t[1][2]],
      ],
      gradientStops: paint.gradientStops.map((s) => ({ position: s.position, color: { r: 1, g: 1, b: 1, a: s.color.a } })),
      opacity,
      visible: true,
    };
  }
  return { type: 'SOLID', color: { r: 1, g: 1, b: 1 }, opacity, visible: true };
}

/** Every visible paint in white (see maskPaint). */
export function maskPaints(paints: readonly PaintLike[]): MaskPaint[] {
  return paints.map(maskPaint).filter((p): p is MaskPaint => p !== null);
}

export interface EffectLike {
  readonly type: string;
  readonly visible?: boolean;
}

/**
 * Keep only layer blurs (they make the mask soft, which is what the designer drew); shadows, background
 * blurs, noise and the like would add or remove coverage that is not the shape.
 */
export function maskEffects<E extends EffectLike>(effects: readonly E[]): E[] {
  return effects.filter((e) => e.type === 'LAYER_BLUR' && e.visible !== false);
}
