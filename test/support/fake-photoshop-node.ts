/**
 * The fake Photoshop modules (test/e2e/uxp-harness/fake-photoshop.js, the ones the browser e2e test uses) in
 * Node, with the real UxpPhotoshopHost over them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { UxpPhotoshopHost, type PhotoshopModules, type XmpModule } from '../../plugin-uxp/src/photoshop-host';
import { createFakePhotoshop, type FakePhotoshopOptions } from '../e2e/uxp-harness/fake-photoshop';
import { FIXTURES } from './server';

/** shapes-128.png as straight RGBA */
export async function shapesFixture(): Promise<{ width: number; height: number; rgba: Uint8Array }> {
  const { data, info } = await sharp(fs.readFileSync(path.join(FIXTURES, 'shapes-128.png'))).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgba: new Uint8Array(data) };
}

export async function fakePhotoshop(options: FakePhotoshopOptions = {}) {
  const fake = createFakePhotoshop({ fixture: await shapesFixture(), ...options });
  // the fake modules are object graphs of Photoshop's shape, not the typings' classes
  const host = new UxpPhotoshopHost(fake.modules.photoshop as PhotoshopModules, fake.modules.uxp.xmp as Partial<XmpModule> | undefined);
  return { ...fake, host };
}
