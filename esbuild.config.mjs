// Builds every bundle: the CLI (and, as they land, the server, its worker and the plugins) into dist/.
import { build } from 'esbuild';
import { buildFigmaPlugin, buildUxpPlugin, uxpDevelopmentDomains } from './tools/plugins/builds.mjs';

const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  // native addons load their own binaries at run time; the team backends' clients are required only when
  // --store / --blobs name them (server/store/index.ts), so the embedded server never loads them
  external: ['onnxruntime-node', 'sharp', 'better-sqlite3', 'pg', '@aws-sdk/client-s3', 'bullmq', 'ioredis', 's3rver'],
  logLevel: 'warning',
};

await Promise.all([
  build({ ...node, entryPoints: ['server/cli/edit.ts'], outfile: 'dist/cli/edit.js' }),
  build({ ...node, entryPoints: ['server/cli/models.ts'], outfile: 'dist/cli/models.js' }),
  build({ ...node, entryPoints: ['server/cli/store.ts'], outfile: 'dist/cli/store.js' }),
  build({ ...node, entryPoints: ['server/cli/users.ts'], outfile: 'dist/cli/users.js' }),
  build({ ...node, entryPoints: ['server/engine/worker.ts'], outfile: 'dist/engine-worker.js' }),
  build({ ...node, entryPoints: ['server/edit/image-worker.ts'], outfile: 'dist/image-worker.js' }),
  build({ ...node, entryPoints: ['server/main.ts'], outfile: 'dist/server/main.js' }),
  build({ ...node, entryPoints: ['bench/overhead.ts', 'bench/paper.ts', 'bench/gpu.ts', 'bench/server.ts', 'bench/compose.ts', 'bench/batching.ts', 'bench/isolation.ts', 'bench/masks.ts', 'bench/cluster.ts', 'bench/eval.ts'], outdir: 'dist/bench' }),
]);

// The plugins, as loaded in development from plugin-figma/manifest.json and plugin-uxp/manifest.json
// (npm run package makes the installable packages from the same builds: tools/plugins/).
await Promise.all([
  buildFigmaPlugin({ codeFile: 'plugin-figma/dist/code.js', uiFile: 'plugin-figma/dist/ui.html' }),
  buildUxpPlugin({ outfile: 'plugin-uxp/dist/index.js', domains: uxpDevelopmentDomains() }),
]);

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
