// The two plugin builds, used by esbuild.config.mjs (the development builds, loaded from plugin-figma/ and
// plugin-uxp/) and tools/plugins/package.mjs (the packages a designer installs).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { build } from 'esbuild';

/**
 * Figma: the main-thread bundle, and one ui.html with the UI script inlined (Figma loads the UI from a string,
 * so nothing can be linked).
 */
export async function buildFigmaPlugin({ codeFile, uiFile }) {
  const figma = { bundle: true, format: 'iife', target: 'es2020', minify: true, logLevel: 'warning' };
  const [, ui] = await Promise.all([
    build({ ...figma, entryPoints: ['plugin-figma/src/code.ts'], outfile: codeFile }),
    build({ ...figma, entryPoints: ['plugin-figma/src/ui.ts'], write: false }),
  ]);
  const script = ui.outputFiles[0].text.replace(/<\/script/gi, '<\\/script'); // would end the inline tag
  const html = readFileSync('plugin-figma/src/ui.html', 'utf8').replace('<!-- layerloop:script -->', () => `<script>${script}</script>`);
  mkdirSync(dirname(uiFile), { recursive: true });
  writeFileSync(uiFile, html);
}

/**
 * Photoshop: the panel bundle that plugin-uxp/index.html loads as dist/index.js. `photoshop` and `uxp` stay
 * runtime require() calls (UXP provides them; a browser harness defines window.require). `domains` are the
 * manifest's network domains, which the panel's Settings allow (UXP grants no others).
 */
export async function buildUxpPlugin({ outfile, domains, sourcemap = true }) {
  await build({
    entryPoints: ['plugin-uxp/src/index.ts'],
    outfile,
    bundle: true,
    format: 'iife',
    target: 'es2020',
    external: ['photoshop', 'uxp'],
    sourcemap,
    define: { LAYERLOOP_NETWORK_DOMAINS: JSON.stringify(domains) },
    logLevel: 'warning',
  });
}

/** The network domains of the development manifest (plugin-uxp/manifest.json). */
export function uxpDevelopmentDomains() {
  return JSON.parse(readFileSync('plugin-uxp/manifest.json', 'utf8')).requiredPermissions.network.domains;
}
