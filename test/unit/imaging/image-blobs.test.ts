import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createImage, decodeImage, sniffImageType, type RgbaImage } from '../../../server/imaging/image';
import { ImageBlobs, NotAnImageError } from '../../../server/imaging/image-blobs';
import { canonicalPng } from '../../../server/imaging/upload';
import { FsBlobStore } from '../../../server/store/blobs';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layerloop-image-blobs-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Noise with every alpha value, fully transparent pixels included (their RGB must survive too). */
function noisyImage(width: number, height: number, seed: number): RgbaImage {
  const img = createImage(width, height);
  let s = seed;
  for (let i = 0; i < img.data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    img.data[i] = s >>> 24;
  }
  for (let p = 0; p < width * height; p += 7) img.data[p * 4 + 3] = 0;
  return img;
}

describe('ImageBlobs', () => {
  it('stores the canonical PNG, and a fresh instance (no cache) decodes the same pixels the cache returns', async () => {
    const blobs = new FsBlobStore(dir);
    const image = noisyImage(33, 17, 1);
    const stored = await new ImageBlobs(blobs).put(image);
    const bytes = await blobs.get(stored.sha256);
    expect(Buffer.from(bytes!).equals(await canonicalPng(image))).toBe(true);
    expect(stored).toEqual({ sha256: stored.sha256, created: true, size: bytes!.length });

    const cached = new ImageBlobs(blobs);
    await cached.put(image);
    const fromCache = await cached.get(stored.sha256);
    const fromDisk = await new ImageBlobs(blobs).get(stored.sha256);
    expect(fromCache).toBe(image); // the very object: no read, no decode
    expect(fromDisk).not.toBe(image);
    expect(fromDisk!.width).toBe(33);
    expect(Buffer.from(fromDisk!.data).equals(Buffer.from(image.data))).toBe(true);
  });

  it('puts equal pixels under one sha256 however they arrived', async () => {
    const images = new ImageBlobs(new FsBlobStore(dir));
    const image = noisyImage(20, 20, 2);
    const first = await images.put(image);
    const again = await images.put(createImage(20, 20, new Uint8Array(image.data)));
    expect(again).toEqual({ ...first, created: false });
  });

  it('answers null for an absent blob and NotAnImageError for bytes that are not an image', async () => {
    const blobs = new FsBlobStore(dir);
    const images = new ImageBlobs(blobs);
    const { sha256 } = await blobs.put(new Uint8Array([1, 2, 3, 4]));
    await expect(images.get(sha256)).rejects.toThrow(NotAnImageError);
    await expect(images.get('0'.repeat(64))).resolves.toBeNull();
  });

  it('keeps at most its byte budget, evicting the least recently used', async () => {
    const blobs = new FsBlobStore(dir);
    const side = 16; // 1 KiB of RGBA each
    const images = new ImageBlobs(blobs, 3 * side * side * 4);
    const shas: string[] = [];
    for (let k = 0; k < 3; k++) shas.push((await images.put(noisyImage(side, side, 10 + k))).sha256);
    const first = await images.get(shas[0]); // now the most recently used
    shas.push((await images.put(noisyImage(side, side, 20))).sha256); // evicts shas[1]
    expect(images.cacheStats()).toEqual({ images: 3, bytes: 3 * side * side * 4 });
    expect(await images.get(shas[0])).toBe(first);
    const reread = await images.get(shas[1]); // decoded again from the blob store, equal pixels
    expect(Buffer.from(reread!.data).equals(Buffer.from(noisyImage(side, side, 11).data))).toBe(true);
    // an image bigger than the whole budget is stored but never cached
    const big = await images.put(noisyImage(64, 64, 30));
    expect((await images.get(big.sha256))!.width).toBe(64);
    expect(images.cacheStats().bytes).toBeLessThanOrEqual(3 * side * side * 4);
  });
});

describe('sniffImageType', () => {
  it('tells PNG, JPEG and WebP by their signatures and nothing else', async () => {
    const png = await canonicalPng(noisyImage(4, 4, 3));
    expect(sniffImageType(png)).toBe('image/png');
    expect((await decodeImage(png)).width).toBe(4);
    expect(sniffImageType(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 0]))).toBe('image/jpeg');
    expect(sniffImageType(Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 ', 'latin1'))).toBe('image/webp');
    expect(sniffImageType(Buffer.from('RIFF\x10\x00\x00\x00WAVEfmt ', 'latin1'))).toBeNull();
    expect(sniffImageType(new Uint8Array([0x89, 0x50, 0x4e]))).toBeNull(); // a PNG signature's prefix is not a PNG
    expect(sniffImageType(new Uint8Array(0))).toBeNull();
  });
});
