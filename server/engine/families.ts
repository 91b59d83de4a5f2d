/**
 * The model-family registry: a folder's model_index.json `_class_name` picks the adapter that loads it (as
 * diffusers' pipelines and transformers.js' Auto* registries do). Adding a family is one adapter module and
 * one entry here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { readJson, type LoadOptions, type ModelAdapter, type ModelFamily } from './family';
import { KLEIN_FAMILY } from './flux2/adapter';
import { PIX2PIX_FAMILY } from './pix2pix/adapter';

export const FAMILIES: readonly ModelFamily[] = [PIX2PIX_FAMILY, KLEIN_FAMILY];

const modelIndexSchema = z.looseObject({ _class_name: z.string({ error: 'is missing: it names the pipeline the folder was exported from' }) });

export function supportedFamilies(): string {
  return FAMILIES.map((f) => `${f.label} (${f.classNames.join(', ')})`).join('; ');
}

/** The family of a model folder, by its model_index.json. Throws naming the supported families when unknown. */
export function familyOf(dir: string): { family: ModelFamily; pipeline: string } {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`model folder not found: ${dir}`);
  const file = path.join(dir, 'model_index.json');
  const index = readJson(file, modelIndexSchema);
  if (!index) throw new Error(`model folder ${dir} has no model_index.json: it names the model's pipeline; supported: ${supportedFamilies()}`);
  const pipeline = index._class_name;
  const family = FAMILIES.find((f) => f.classNames.includes(pipeline));
  if (!family) throw new Error(`${file}: _class_name '${pipeline}' is not a model family this engine runs; supported: ${supportedFamilies()}`);
  return { family, pipeline };
}

/** Load a model folder with its family's adapter. */
export async function loadModel(dir: string, opts: LoadOptions): Promise<ModelAdapter> {
  const { family, pipeline } = familyOf(dir);
  return family.load(dir, pipeline, opts);
}
