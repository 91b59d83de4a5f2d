/**
 * The fake `figma` global (test/e2e/figma-harness/fake-figma.js, the one the browser e2e test uses) in Node:
 * PNGs encoded with sharp, the source image the e2e fixture, and the real FigmaHost over it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { RealFigmaHost } from '../../plugin-figma/src/figma-host';
import { createFakeFigma, type FakeFigmaOptions } from '../e2e/figma-harness/fake-figma';
import { FIXTURES } from './server';

export async function encodePng(rgba: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  return new Uint8Array(await sharp(Buffer.from(rgba), { raw: { width, height, channels: 4 } }).png().toBuffer());
}

export function fakeFigma(options: Partial<FakeFigmaOptions> = {}) {
  return createFakeFigma({ sourcePng: new Uint8Array(fs.readFileSync(path.join(FIXTURES, 'shapes-128.png'))), encodePng, ...options });
}

/** The real host over a fake global: the fake is an object graph of Figma's shape, not the typings' classes. */
export function hostOver(figma: object): RealFigmaHost {
  return new RealFigmaHost('<html>ui</html>', figma as PluginAPI);
}
