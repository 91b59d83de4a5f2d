// Builds every bundle: the CLI (and, as they land, the server, its worker and the plugins) into dist/.
import { build } from 'esbuild';

const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  // native addons load their own binaries at run time
  external: ['onnxruntime-node', 'sharp', 'better-sqlite3'],
  logLevel: 'warning',
};

await Promise.all([
  build({ ...node, entryPoints: ['server/cli/edit.ts'], outfile: 'dist/cli/edit.js' }),
  build({ ...node, entryPoints: ['server/cli/models.ts'], outfile: 'dist/cli/models.js' }),
  build({ ...node, entryPoints: ['server/cli/store.ts'], outfile: 'dist/cli/store.js' }),
  build({ ...node, entryPoints: ['server/engine/worker.ts'], outfile: 'dist/engine-worker.js' }),
  build({ ...node, entryPoints: ['server/main.ts'], outfile: 'dist/server/main.js' }),
  build({ ...node, entryPoints: ['bench/overhead.ts', 'bench/paper.ts', 'bench/gpu.ts', 'bench/server.ts'], outdir: 'dist/bench' }),
]);

// Figma plugin (plugin-figma/, loaded from plugin-figma/manifest.json): the main-thread bundle, and one
// ui.html with the UI script inlined (Figma loads the UI from a string, so nothing can be linked).
{
  const { mkdirSync, readFileSync, writeFileSync } = await import('node:fs');
  const figma = { bundle: true, format: 'iife', target: 'es2020', minify: true, logLevel: 'warning' };
  const [, ui] = await Promise.all([
    build({ ...figma, entryPoints: ['plugin-figma/src/code.ts'], outfile: 'plugin-figma/dist/code.js' }),
    build({ ...figma, entryPoints: ['plugin-figma/src/ui.ts'], write: false }),
  ]);
  const script = ui.outputFiles[0].text.replace(/<\/script/gi, '<\\/script'); // would end the inline tag
  const html = readFileSync('plugin-figma/src/ui.html', 'utf8').replace('<!-- layerloop:script -->', () => `<script>${script}</script>`);
  mkdirSync('plugin-figma/dist', { recursive: true });
  writeFileSync('plugin-figma/dist/ui.html', html);
}

// Photoshop UXP panel (plugin-uxp/, loaded from plugin-uxp/manifest.json, whose index.html loads dist/index.js):
// `photoshop` and `uxp` stay runtime require() calls (UXP provides them; a browser harness defines window.require).
await build({
  entryPoints: ['plugin-uxp/src/index.ts'],
  outfile: 'plugin-uxp/dist/index.js',
  bundle: true,
  format: 'iife',
  target: 'es2020',
  external: ['photoshop', 'uxp'],
  sourcemap: true,
  logLevel: 'warning',
});

// Playground page (server/web/, served at GET / by server/http/app.ts): one dist/web/playground.html with the
// script inlined, read by the server bundle from ../web relative to dist/server/.
{
  const { mkdirSync, readFileSync, writeFileSync } = await import('node:fs');
  const page = await build({
    entryPoints: ['server/web/playground.ts'],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'warning',
  });
  const script = page.outputFiles[0].text.replace(/<\/script/gi, '<\\/script'); // would end the inline tag
  const html = readFileSync('server/web/playground.html', 'utf8').replace('<!-- layerloop:script -->', () => `<script>${script}</script>`);
  mkdirSync('dist/web', { recursive: true });
  writeFileSync('dist/web/playground.html', html);
}
