/**
 * The data directory's content-verifying check (built to dist/cli/store.js):
 *
 *   npm run store -- verify [--data-dir DIR]      (default: LAYERLOOP_DATA_DIR, else <repo>/data)
 *
 * Runs the store's integrity check with every referenced blob rehashed (the server's start-up check only looks
 * at sizes), then rehashes every blob file, referenced or not (an upload no edit uses yet). Prints one line per
 * problem and a summary. Safe while the server runs: it only reads. A damaged blob is repaired by uploading the
 * same image again (the server rewrites it); a damaged database by a backup or `sqlite3 .recover`.
 * Exit status: 0 all intact, 1 problems found (or the directory cannot be opened), 2 bad usage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { findRepoRoot } from '../config';
import { DATABASE_FILE, openStore } from '../store';

const USAGE = `usage: npm run store -- verify [--data-dir DIR]
  verify     rehash every blob and check every record of the data directory (default $LAYERLOOP_DATA_DIR or <repo>/data)`;

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

export async function verifyDataDir(dataDir: string): Promise<number> {
  if (!fs.existsSync(path.join(dataDir, DATABASE_FILE))) {
    err(`FAILED: ${dataDir} holds no ${DATABASE_FILE}: pass the server's --data-dir`);
    return 1;
  }
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore(dataDir);
  } catch (e) {
    err(`FAILED: cannot open ${dataDir}: ${(e as Error).message}`);
    return 1;
  }
  try {
    const records = await store.edits.integrityCheck({ verifyBlobHashes: true });
    const files = await store.blobs.verifyAll();
    // a damaged blob that a node references is reported by both: once is enough
    const seen = new Set(records.filter((p) => p.kind === 'corrupt_blob').map((p) => /blob ([0-9a-f]{64})/.exec(p.message)?.[1]));
    const unreferenced = files.damaged.filter((d) => !seen.has(d.sha256));
    for (const p of records) out(`${p.kind}: ${p.message}`);
    for (const d of unreferenced) out(`corrupt_blob: ${d.problem}`);
    const problems = records.length + unreferenced.length;
    out(`${dataDir}: ${files.checked} blob files rehashed, ${problems === 0 ? 'no problems' : `${problems} problem${problems === 1 ? '' : 's'}`}`);
    return problems === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: { 'data-dir': { type: 'string' } }; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: process.argv.slice(2), options: { 'data-dir': { type: 'string' } }, allowPositionals: true });
  } catch (e) {
    err(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const [command, ...rest] = parsed.positionals;
  if (command !== 'verify' || rest.length > 0) {
    err(USAGE);
    return 2;
  }
  const fromEnv = process.env.LAYERLOOP_DATA_DIR?.trim();
  const dataDir = path.resolve(parsed.values['data-dir'] ?? (fromEnv || path.join(findRepoRoot(__dirname), 'data')));
  return verifyDataDir(dataDir);
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    err(e.stack ?? e.message);
    process.exit(1);
  },
);
