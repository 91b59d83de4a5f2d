/**
 * ImageBlobs: the one place images go into and come out of the blob store.
 *
 * - put: canonical PNG (same pixels, same sha256, whichever way they arrived) -> blob store.
 * - get: the decoded pixels, from a small in-memory cache when possible, else read + decode.
 *
 * The cache is what keeps the server's own cost per edit small: an edit's source is nearly always an image
 * this process has just handled (the upload a moment ago, or the previous edit's result in a chain), and
 * edits.create, the job and `?format=rgba` downloads all need its pixels or size. It is bounded by bytes and
 * evicts the least recently used. Cached images are shared: callers must treat `data` as read-only.
 */
import type { BlobPutOptions, BlobStore } from '../store';
import { decodeImage, type RgbaImage } from './image';
import { canonicalPng } from './upload';

/** Decoded RGBA bytes kept in memory by default: a few dozen working-size layers. */
export const DEFAULT_IMAGE_CACHE_BYTES = 128 * 1024 * 1024;

export interface StoredImage {
  sha256: string;
  /** false when these pixels were stored before */
  created: boolean;
  /** size of the canonical PNG in bytes */
  size: number;
}

/** The blob is absent (null from get) or not a decodable image (thrown, with sharp's reason). */
export class NotAnImageError extends Error {
  constructor(
    readonly sha256: string,
    readonly reason: string,
  ) {
    super(`blob ${sha256} is not a readable image (${reason})`);
    this.name = 'NotAnImageError';
  }
}

export class ImageBlobs {
  private readonly cache = new Map<string, RgbaImage>();
  private cachedBytes = 0;

  constructor(
    private readonly blobs: BlobStore,
    private readonly maxCacheBytes = DEFAULT_IMAGE_CACHE_BYTES,
  ) {}

  /** Store an image as canonical PNG; durable when this resolves, unless `wait` is 'readable' (see BlobPutOptions). */
  async put(image: RgbaImage, options: BlobPutOptions = {}): Promise<StoredImage> {
    const png = await canonicalPng(image);
    const { sha256, created, size } = await this.blobs.put(png, options);
    this.remember(sha256, image);
    return { sha256, created, size };
  }

  /** The image's pixels; null when no such blob; NotAnImageError when the blob is not an image. */
  async get(sha256: string): Promise<RgbaImage | null> {
    const hit = this.recall(sha256);
    if (hit) return hit;
    const bytes = await this.blobs.get(sha256);
    if (!bytes) return null;
    let image: RgbaImage;
    try {
      image = await decodeImage(bytes);
    } catch (err) {
      throw new NotAnImageError(sha256, (err as Error).message);
    }
    this.remember(sha256, image);
    return image;
  }

  /** Number of images and bytes the cache holds (metrics, tests). */
  cacheStats(): { images: number; bytes: number } {
    return { images: this.cache.size, bytes: this.cachedBytes };
  }

  private recall(sha256: string): RgbaImage | undefined {
    const hit = this.cache.get(sha256);
    if (hit) {
      // Map keeps insertion order: re-inserting makes this the most recently used
      this.cache.delete(sha256);
      this.cache.set(sha256, hit);
    }
    return hit;
  }

  private remember(sha256: string, image: RgbaImage): void {
    const bytes = image.data.byteLength;
    if (bytes > this.maxCacheBytes || this.cache.has(sha256)) return;
    this.cache.set(sha256, image);
    this.cachedBytes += bytes;
    for (const [key, old] of this.cache) {
      if (this.cachedBytes <= this.maxCacheBytes) break;
      this.cache.delete(key);
      this.cachedBytes -= old.data.byteLength;
    }
  }
}
