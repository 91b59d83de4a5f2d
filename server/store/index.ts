/**
 * The store module's entry point: the contracts (store.ts), the latent codec, openStore(), which assembles the
 * embedded default (FsBlobStore + SqliteEditStore) under one data directory, and openConfiguredStore(), which
 * opens what the server's --store / --blobs URLs name (PostgreSQL, S3), each half independently.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { FsBlobStore } from './blobs';
import { SqliteEditStore, type SqliteEditStoreOptions } from './sqlite';
import type { BlobStore, EditStore, Store } from './store';
import type { PostgresLocation, S3Location } from './urls';

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

/** What the server's configuration names: null halves are the embedded ones, under dataDir. */
export interface StoreSelection {
  dataDir: string;
  store: PostgresLocation | null;
  blobs: S3Location | null;
}

export interface ConfiguredStore extends Store {
  /** Where each half lives, for the log (no passwords). */
  readonly location: { edits: string; blobs: string };
  /** Removes what interrupted blob writes left behind (the embedded store's temp files); returns how many. */
  removeTempFiles(): Promise<number>;
}

interface OpenedBlobs {
  blobs: BlobStore;
  where: string;
  removeTempFiles(): Promise<number>;
  /** after flush(): lets go of connections */
  release(): void;
}

/**
 * Opens the configured store. PostgreSQL and S3 are checked on the way (reachable, usable, schema not newer than
 * this code): a PostgresConfigError or S3ConfigError says what to fix. Their modules (and client libraries) are
 * required only here, when named, so the embedded server never loads them (a require, not an import(), so the
 * bundle and the tests' CommonJS both keep it lazy).
 */
export async function openConfiguredStore(selection: StoreSelection, options: { onError?: (message: string, error: Error) => void } = {}): Promise<ConfiguredStore> {
  const opened = await openBlobs(selection);
  let edits: EditStore & { close(): Promise<void> | void };
  let where: string;
  try {
    if (selection.store) {
      const { PostgresEditStore, redactUrl } = require('./postgres') as typeof import('./postgres');
      edits = await PostgresEditStore.open(selection.store.url, opened.blobs, { onError: options.onError });
      where = redactUrl(selection.store.url);
    } else {
      await mkdir(selection.dataDir, { recursive: true });
      where = path.join(selection.dataDir, 'layerloop.sqlite');
      edits = new SqliteEditStore(where, opened.blobs);
    }
  } catch (error) {
    opened.release();
    throw error;
  }
  return {
    blobs: opened.blobs,
    edits,
    location: { edits: where, blobs: opened.where },
    removeTempFiles: opened.removeTempFiles,
    close: async () => {
      await opened.blobs.flush();
      await edits.close();
      opened.release();
    },
  };
}

async function openBlobs({ dataDir, blobs: location }: StoreSelection): Promise<OpenedBlobs> {
  if (location) {
    const { S3BlobStore } = require('./s3') as typeof import('./s3');
    const blobs = await S3BlobStore.open(location);
    const where = `s3://${location.bucket}/${location.prefix}${location.endpoint ? ` at ${location.endpoint}` : ''}`;
    return { blobs, where, removeTempFiles: async () => 0, release: () => blobs.destroy() };
  }
  const dir = path.join(dataDir, 'blobs');
  await mkdir(dir, { recursive: true });
  const blobs = new FsBlobStore(dir);
  return { blobs, where: dir, removeTempFiles: () => blobs.removeTempFiles(), release: () => {} };
}
