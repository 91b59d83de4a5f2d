/**
 * Uploaded images -> canonical PNG. Every image the server stores (uploads, masks, results) is re-encoded
 * the same way from its RGBA pixels, so identical pixels always have the same sha256 whichever way they
 * arrived (a Figma PNG export, raw RGBA from Photoshop, a result the server wrote). That is what lets the
 * server tell whether a layer still holds a stored result or the user painted on it.
 */
import sharp from 'sharp';
import { imageSizeProblem } from '../../shared/protocol';
import { createImage, type RgbaImage } from './image';

export class UploadError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
    this.name = 'UploadError';
  }
}

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp'];
const RAW_TYPES = ['application/octet-stream', 'application/x-rgba'];

/** Canonical PNG bytes of an RGBA image (deterministic: same pixels, same bytes). */
export async function canonicalPng(img: RgbaImage): Promise<Buffer> {
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 4 },
  })
    .png({ compressionLevel: 6, adaptiveFiltering: false, palette: false })
    .toBuffer();
}

/**
 * Decode an upload: PNG/JPEG/WebP by content type, or raw RGBA with `width`/`height`. Throws UploadError
 * with a message that says what to send instead.
 */
export async function decodeUpload(body: Uint8Array, contentType: string | undefined, size: { width?: string | null; height?: string | null }): Promise<RgbaImage> {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (body.length === 0) throw new UploadError(400, 'the request body is empty: send the image bytes');
  if (RAW_TYPES.includes(type)) {
    const width = Number(size.width);
    const height = Number(size.height);
    if (!size.width || !size.height || !Number.isInteger(width) || !Number.isInteger(height)) {
      throw new UploadError(400, `raw RGBA uploads need integer ?width=&height= query parameters (got width=${size.width ?? 'nothing'}, height=${size.height ?? 'nothing'})`);
    }
    const problem = imageSizeProblem(width, height);
    if (problem) throw new UploadError(400, problem);
    if (body.length !== width * height * 4) {
      throw new UploadError(400, `raw RGBA ${width}x${height} must be ${width * height * 4} bytes (4 per pixel), got ${body.length}`);
    }
    return createImage(width, height, new Uint8Array(body));
  }
  if (!IMAGE_TYPES.includes(type)) {
    throw new UploadError(415, `unsupported content type '${type || 'none'}': send image/png, image/jpeg, image/webp, or raw RGBA as application/octet-stream with ?width=&height=`);
  }
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(body).metadata();
  } catch (err) {
    throw new UploadError(400, `the body is not a readable ${type} image (${(err as Error).message})`);
  }
  const expected = type.split('/')[1];
  if (meta.format !== expected) {
    throw new UploadError(400, `the content type says ${type} but the bytes are ${meta.format ?? 'not an image'}: fix the Content-Type header`);
  }
  const problem = imageSizeProblem(meta.width ?? 0, meta.height ?? 0);
  if (problem) throw new UploadError(400, problem);
  try {
    const { data, info } = await sharp(body, { failOn: 'error' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    return createImage(info.width, info.height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  } catch (err) {
    throw new UploadError(400, `the ${type} image is corrupt or truncated (${(err as Error).message})`);
  }
}
