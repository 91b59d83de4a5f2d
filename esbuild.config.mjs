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
  build({ ...node, entryPoints: ['server/engine/worker.ts'], outfile: 'dist/engine-worker.js' }),
  build({ ...node, entryPoints: ['server/main.ts'], outfile: 'dist/server/main.js' }),
  build({ ...node, entryPoints: ['bench/overhead.ts', 'bench/paper.ts', 'bench/gpu.ts'], outdir: 'dist/bench' }),
]);

