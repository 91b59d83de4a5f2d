/**
 * The store module's entry point: the contracts (store.ts), the latent codec, and openStore(), which assembles
 * the embedded default (FsBlobStore + SqliteEditStore) under one data directory. A networked backend would
 * get its own open function returning the same Store.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { FsBlobStore } from './blobs';
import { SqliteEditStore, type SqliteEditStoreOptions } from './sqlite';
import type { Store } from './store';

export * from './store';
export { decodeLatent, encodeLatent, latentByteLength } from './latent';
export { FsBlobStore } from './blobs';
export { SqliteEditStore } from './sqlite';

export interface EmbeddedStore extends Store {
  blobs: FsBlobStore;
  edits: SqliteEditStore;
}

/** Opens (creating if needed) `dataDir/blobs/` and `dataDir/layerloop.sqlite`, migrating the schema. */
export async function openStore(dataDir: string, options: SqliteEditStoreOptions = {}): Promise<EmbeddedStore> {
  const blobDir = path.join(dataDir, 'blobs');
  await mkdir(blobDir, { recursive: true });
  const blobs = new FsBlobStore(blobDir);
  const edits = new SqliteEditStore(path.join(dataDir, 'layerloop.sqlite'), blobs, options);
  return {
    blobs,
    edits,
    close: async () => {
      await blobs.flush();
      await edits.close();
    },
  };
}
