/** models: the loaded model, and the other model folders the server could be started with. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { familyLabel } from '../../engine/family-names';
import { authedProcedure, router } from '../trpc';

const modelIndexSchema = z.looseObject({
  _class_name: z.string().optional(),
  _name_or_path: z.string().optional(),
  native_size: z.number().int().positive().optional(),
});

export interface ModelEntry {
  /** the folder name; pass `--model-dir models/<name>` to run it */
  name: string;
  loaded: boolean;
  pipeline: string | null;
  /** the model family that runs it (null: no family this engine runs) */
  family: string | null;
  nativeSize: number | null;
  /** the folder has a model_index.json that could be read */
  readable: boolean;
}

/** Model folders (those holding model_index.json) directly under `root`, by name. */
async function scanModels(root: string): Promise<{ dir: string; name: string }[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(root, { withFileTypes: true });
  } catch {
    return [];
  }
  const found: { dir: string; name: string }[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = path.join(root, entry.name);
    try {
      await fs.access(path.join(dir, 'model_index.json'));
      found.push({ dir, name: entry.name });
    } catch {
      // not a model folder
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

async function describe(dir: string, name: string, loaded: boolean): Promise<ModelEntry> {
  try {
    const index = modelIndexSchema.parse(JSON.parse(await fs.readFile(path.join(dir, 'model_index.json'), 'utf8')));
    const pipeline = index._class_name ?? null;
    const family = familyLabel(pipeline);
    return { name, loaded, pipeline, family, nativeSize: index.native_size ?? null, readable: true };
  } catch {
    return { name, loaded, pipeline: null, family: null, nativeSize: null, readable: false };
  }
}

export const modelsRouter = router({
  list: authedProcedure.query(async ({ ctx }) => {
    const { config, engine } = ctx.services;
    const loadedDir = path.resolve(config.modelDir);
    const folders = await scanModels(config.modelsRoot);
    if (!folders.some((f) => path.resolve(f.dir) === loadedDir)) folders.unshift({ dir: loadedDir, name: engine.info.name });
    const models = await Promise.all(folders.map((f) => describe(f.dir, f.name, path.resolve(f.dir) === loadedDir)));
    return {
      loaded: { name: engine.info.name, family: engine.info.family, readsReferences: engine.info.readsReferences, defaultTextScale: engine.info.defaultTextScale, provider: engine.info.provider, precision: engine.info.precision, nativeSize: engine.info.nativeSize },
      models,
    };
  }),
});
