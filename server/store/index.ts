/**
 * The store module's entry point: the contracts (store.ts), the latent codec, and openStore(), which assembles
 * the embedded default (FsBlobStore + SqliteEditStore) under one data directory. A networked backend would
 * get its own open function returning the same Store.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { FsBlobStore } from './blobs';
import { SqliteEditStore, type SqliteEditStoreOptions } from './sqlite';
import { combineHealth, type Store } from './store';

export * from './store';
export { decodeLatent, encodeLatent, latentByteLength } from './latent';
export { FsBlobStore } from './blobs';
export { SqliteEditStore } from './sqlite';

export interface EmbeddedStore extends Store {
  blobs: FsBlobStore;
  edits: SqliteEditStore;
}

export const DATABASE_FILE = 'layerloop.sqlite';

/**
 * Opens (creating if needed) `dataDir/blobs/` and `dataDir/layerloop.sqlite`, migrating the schema. A database
 * that is empty (new, or truncated to 0 bytes) beside stored blobs is refused: the metadata was lost, and
 * starting an empty store over the blobs would hide that.
 */
export async function openStore(dataDir: string, options: SqliteEditStoreOptions = {}): Promise<EmbeddedStore> {
  const blobDir = path.join(dataDir, 'blobs');
  await mkdir(blobDir, { recursive: true });
  const blobs = new FsBlobStore(blobDir);
  const edits = new SqliteEditStore(path.join(dataDir, DATABASE_FILE), blobs, { ...options, mustHoldData: await blobs.holdsAnyBlob() });
  return {
    blobs,
    edits,
    health: async () => combineHealth(await Promise.all([blobs.health(), edits.health()])),
    close: async () => {
      await blobs.flush();
      await edits.close();
    },
  };
}
