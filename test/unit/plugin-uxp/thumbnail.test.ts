import sharp from 'sharp';
import { base64, downscaleRgba, encodePngStored } from '../../../plugin-uxp/src/thumbnail';

describe('variation thumbnails', () => {
  it('encodes a PNG that a real decoder reads back exactly, over several stored blocks', async () => {
    const width = 200;
    const height = 100; // 80100 bytes of scanlines: two stored deflate blocks
    const rgba = new Uint8Array(width * height * 4).map((_, i) => (i * 31 + (i >> 7)) & 255);
    const png = encodePngStored(rgba, width, height);
    const { data, info } = await sharp(Buffer.from(png)).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([width, height, 4]);
    expect(new Uint8Array(data)).toEqual(rgba);
    expect(Buffer.from(base64(png), 'base64')).toEqual(Buffer.from(png));
  });

  it('shrinks by averaging each thumbnail pixel’s area, keeping the aspect ratio', () => {
    // 4x2: left half black, right half white; alpha 255
    const rgba = new Uint8Array(4 * 2 * 4);
    for (let i = 0; i < 8; i++) rgba.set(i % 4 < 2 ? [0, 0, 0, 255] : [255, 255, 255, 255], i * 4);
    const small = downscaleRgba(rgba, 4, 2, 2);
    expect([small.width, small.height]).toEqual([2, 1]);
    expect(Array.from(small.rgba)).toEqual([0, 0, 0, 255, 255, 255, 255, 255]);
    const odd = downscaleRgba(rgba, 4, 2, 1); // 1x1: everything averaged
    expect([odd.width, odd.height, ...odd.rgba]).toEqual([1, 1, 128, 128, 128, 255]);
    expect(downscaleRgba(rgba, 4, 2, 96)).toMatchObject({ width: 4, height: 2 }); // never enlarged
  });
});
