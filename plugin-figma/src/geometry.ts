/**
 * 2-D affine transforms in Figma's layout and the little geometry the plugin needs. Pure functions, no
 * Figma or DOM globals (shared by the main thread, the UI and the tests).
 *
 * A Transform `[[a, c, e], [b, d, f]]` maps (x, y) to (a·x + c·y + e, b·x + d·y + f): Figma's
 * `relativeTransform` / `absoluteTransform` layout.
 */

export type Transform = [[number, number, number], [number, number, number]];

/** An axis-aligned rectangle in page coordinates (Figma's `absoluteBoundingBox` shape). */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const IDENTITY: Transform = [
  [1, 0, 0],
  [0, 1, 0],
];

/** The transform of a pure translation. */
export function translation(x: number, y: number): Transform {
  return [
    [1, 0, x],
    [0, 1, y],
  ];
}

/** A·B: apply B first, then A. */
export function multiply(A: Transform, B: Transform): Transform {
  return [
    [
      A[0][0] * B[0][0] + A[0][1] * B[1][0],
      A[0][0] * B[0][1] + A[0][1] * B[1][1],
      A[0][0] * B[0][2] + A[0][1] * B[1][2] + A[0][2],
    ],
    [
      A[1][0] * B[0][0] + A[1][1] * B[1][0],
      A[1][0] * B[0][1] + A[1][1] * B[1][1],
      A[1][0] * B[0][2] + A[1][1] * B[1][2] + A[1][2],
    ],
  ];
}

/** The inverse transform; throws on a degenerate (zero-area) one. */
export function invert(T: Transform): Transform {
  const [[a, c, e], [b, d, f]] = T;
  const k = a * d - b * c;
  if (Math.abs(k) < 1e-12) throw new Error('cannot invert a degenerate transform (the node has no area)');
  return [
    [d / k, -c / k, (c * f - d * e) / k],
    [-b / k, a / k, (b * e - a * f) / k],
  ];
}

export function applyToPoint(T: Transform, x: number, y: number): { x: number; y: number } {
  return { x: T[0][0] * x + T[0][1] * y + T[0][2], y: T[1][0] * x + T[1][1] * y + T[1][2] };
}

const EPS = 1e-6;

/**
 * True when the transform keeps edges horizontal and vertical with no rotation: only translation and
 * (possibly negative, i.e. flipped) axis scales. A flipped node still exports as an upright image of its
 * bounding box, so a result placed upright over it looks the same.
 */
export function isAxisAligned(T: Transform): boolean {
  return Math.abs(T[0][1]) < EPS && Math.abs(T[1][0]) < EPS;
}

/** The rotation of a transform in degrees, as Figma's panel shows it (counter-clockwise positive), rounded to 0.1. */
export function rotationDegrees(T: Transform): number {
  // Figma's y axis points down, so a counter-clockwise turn on screen has b < 0.
  const deg = (Math.atan2(-T[1][0], T[0][0]) * 180) / Math.PI;
  return Math.round(deg * 10) / 10;
}

/** The axis-aligned box around the node box (0, 0, width, height) under T. */
export function boundsOf(T: Transform, width: number, height: number): Rect {
  const corners = [applyToPoint(T, 0, 0), applyToPoint(T, width, 0), applyToPoint(T, 0, height), applyToPoint(T, width, height)];
  const xs = corners.map((p) => p.x);
  const ys = corners.map((p) => p.y);
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return { x, y, width: Math.max(...xs) - x, height: Math.max(...ys) - y };
}

/** The area two rectangles share (0 when they only touch or are apart). */
export function overlapArea(a: Rect, b: Rect): number {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

/** Width and height from a PNG's IHDR chunk (bytes 16-23, big-endian); null when the bytes are not a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | null {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 24 || signature.some((b, i) => bytes[i] !== b)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(12) !== 0x49484452 /* 'IHDR' */) return null;
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** A size as the user reads it: whole pixels (one decimal below 10, so 0.5 does not read as 1), with '×'. */
export function formatSize(width: number, height: number): string {
  const f = (v: number) => (Number.isInteger(v) || v >= 10 ? String(Math.round(v)) : v.toFixed(1));
  return `${f(width)}×${f(height)}`;
}
