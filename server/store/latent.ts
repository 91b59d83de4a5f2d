/**
 * Latent bytes as stored in the blob store: float16, little-endian, row-major by the node's `latent.shape`.
 * Half precision halves the storage and is what fp16 models produce anyway; little-endian is fixed here (not
 * the host's byte order) so a blob means the same thing on every machine that reads it.
 */
import { float32ToHalf, halfToFloat32 } from '../engine/fp16';
import { StoreError } from './store';

/** Float32 values -> float16 LE bytes (round to nearest even; beyond ±65504 becomes ±inf). */
export function encodeLatent(data: Float32Array): Uint8Array {
  const half = float32ToHalf(data);
  const bytes = new Uint8Array(half.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < half.length; i++) view.setUint16(i * 2, half[i], true);
  return bytes;
}

/** float16 LE bytes -> Float32 values. With `shape`, also checks the byte length matches it. */
export function decodeLatent(bytes: Uint8Array, shape?: readonly number[]): Float32Array {
  if (bytes.byteLength % 2 !== 0) {
    throw new StoreError('corrupt', `latent has ${bytes.byteLength} bytes: float16 data needs an even length`);
  }
  if (shape) {
    const expected = latentByteLength(shape);
    if (bytes.byteLength !== expected) {
      throw new StoreError('corrupt', `latent has ${bytes.byteLength} bytes; shape [${shape.join(', ')}] in float16 needs ${expected}`);
    }
  }
  const half = new Uint16Array(bytes.byteLength / 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < half.length; i++) half[i] = view.getUint16(i * 2, true);
  return halfToFloat32(half);
}

/** Bytes a float16 latent of this shape occupies. */
export function latentByteLength(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1) * 2;
}
