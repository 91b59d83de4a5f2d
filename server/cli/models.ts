/**
 * Model management (built to dist/cli/models.js):
 *
 *   npm run models -- verify <dir>
 *   npm run models -- download <hub-repo-id> --out <dir> [--revision main] [--endpoint https://huggingface.co]
 *
 * verify loads the folder with its family's adapter (engine/families.ts) on CPU and prints what the engine will
 * use: the family, each component's inputs and outputs, the precision, the VAE scaling factor and the native
 * size. download fetches
 * an InstructPix2Pix ONNX export in the Hugging Face hub layout (hub.ts: only the needed files, resumable,
 * size- and sha256-checked; HF_TOKEN is sent as a bearer token), then verifies it.
 * Exit status: 0 ok, 1 the model or the download failed (the message says why), 2 bad usage.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../engine/families';
import type { ModelAdapter } from '../engine/family';
import type { TensorSpec } from '../engine/ort';
import { DEFAULT_ENDPOINT, DownloadError, downloadModel, type HubSource } from './hub';

const USAGE = `usage: npm run models -- verify <dir>
       npm run models -- download <hub-repo-id> --out <dir> [--revision main] [--endpoint URL]
  verify     load the model folder on CPU and print its components, precision, scaling factor and native size
  download   fetch an InstructPix2Pix ONNX export (diffusers/optimum layout) from a Hugging Face hub, then verify it
             --out DIR         where to put the folder (required)
             --revision REV    branch, tag or commit (default main)
             --endpoint URL    hub address (default $HF_ENDPOINT or ${DEFAULT_ENDPOINT})
             HF_TOKEN          environment variable: sent as a bearer token (private or gated repositories)`;

class UsageError extends Error {}

const err = (line: string) => process.stderr.write(`${line}\n`);
const out = (line: string) => process.stdout.write(`${line}\n`);

function tensor(s: TensorSpec): string {
  return `${s.name} ${s.type}[${s.shape.join(',')}]`;
}

/** Load the folder as the engine would and print what it found. Returns the exit status. */
export async function verify(dir: string): Promise<number> {
  const folder = path.resolve(dir);
  let model: ModelAdapter;
  let loading = true; // the loader's warnings matter; its 'released' line at the end does not
  try {
    model = await loadModel(folder, { device: 'cpu', timer: { onnxMs: 0, calls: 0 }, log: (m) => loading && err(m) });
  } catch (e) {
    err(`FAILED: ${folder} is not a usable model: ${(e as Error).message}`);
    return 1;
  }
  loading = false;
  try {
    const { info } = model;
    out(`model ${info.name} (${folder})`);
    out(`  family ${info.family} (${info.pipeline})`);
    out(`  precision ${info.precision}, provider ${info.provider}`);
    out(`  native size ${info.nativeSize}x${info.nativeSize}, sides in multiples of ${info.sizeMultiple}`);
    out(`  VAE scaling factor ${info.scalingFactor}, ${info.latentFactor} pixels per latent pixel, ${info.latentChannels} latent channels`);
    out(`  scheduler ${info.scheduleSummary}; samplers ${info.samplers.join(', ')}`);
    for (const [name, io] of Object.entries(model.describe())) {
      out(`  ${name}`);
      out(`    inputs:  ${io.inputs.map(tensor).join('; ')}`);
      out(`    outputs: ${io.outputs.map(tensor).join('; ')}`);
    }
    out(`OK: ${folder} loads and matches the ${info.family} interface`);
    return 0;
  } catch (e) {
    err(`FAILED: ${folder}: ${(e as Error).message}`);
    return 1;
  } finally {
    await model.release().catch(() => {});
  }
}

export async function download(repo: string, opts: { out: string; revision: string; endpoint: string; token: string | null }): Promise<number> {
  const src: HubSource = { endpoint: opts.endpoint, repo, revision: opts.revision, token: opts.token };
  const outDir = path.resolve(opts.out);
  try {
    const result = await downloadModel(src, outDir, { report: err });
    err(`downloaded ${result.files.length} files (${(result.bytes / 1048576).toFixed(1)} MB) into ${outDir}; verifying`);
  } catch (e) {
    if (e instanceof DownloadError) {
      err(`FAILED: ${e.message}`);
      return 1;
    }
    throw e;
  }
  return verify(outDir);
}

async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { out: { type: 'string' }, revision: { type: 'string' }, endpoint: { type: 'string' }, help: { type: 'boolean' } },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const [command, target, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  if (command === 'verify') {
    if (!target) throw new UsageError('verify needs a model folder');
    return verify(target);
  }
  if (command === 'download') {
    if (!target) throw new UsageError('download needs a hub repository id (owner/name)');
    if (typeof values.out !== 'string' || values.out === '') throw new UsageError('download needs --out <dir>');
    const token = process.env.HF_TOKEN?.trim() || null;
    const endpoint = (values.endpoint as string | undefined) ?? (process.env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT);
    if (!/^https?:\/\/[^\s/]+/.test(endpoint)) throw new UsageError(`--endpoint must be an http(s) URL, got '${endpoint}'`);
    return download(target, { out: values.out, revision: (values.revision as string | undefined) ?? 'main', endpoint, token });
  }
  throw new UsageError(command ? `unknown command '${command}'` : 'no command given');
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError) {
      err(`error: ${e.message}\n${USAGE}`);
      process.exit(2);
    }
    err(`FAILED: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
