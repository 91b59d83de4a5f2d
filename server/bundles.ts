/**
 * The worker bundles `npm run build` writes next to the others in dist/ (esbuild.config.mjs), found from a
 * bundle in dist/<name>/ and from the sources in server/ (tests).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function builtBundle(file: string): string {
  const candidates = [path.resolve(__dirname, '..', file), path.resolve(__dirname, '..', 'dist', file)];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found) throw new Error(`worker bundle not found (looked for ${candidates.join(', ')}): run 'npm run build' first`);
  return found;
}
