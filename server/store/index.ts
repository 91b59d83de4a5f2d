/**
 * The store module's entry point: the contracts (store.ts), the latent codec, openStore(), which assembles the
 * embedded default (FsBlobStore + SqliteEditStore) under one data directory, and openConfiguredStore(), which
 * opens what the server's --store / --blobs URLs name (PostgreSQL, S3), each half independently.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { FsBlobStore } from './blobs';
import { SqliteEditStore, type SqliteEditStoreOptions } from './sqlite';
import { type BlobStore, type EditStore, type Store, combineHealth } from './store';
import type { PostgresLocation, S3Location } from './urls';

export * from './store';
export * from './accounts';
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
  const blobs = await embeddedBlobs(dataDir);
  const edits = await embeddedEdits(dataDir, blobs, options);
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

/** The embedded blob store, `dataDir/blobs/`. */
async function embeddedBlobs(dataDir: string): Promise<FsBlobStore> {
  const dir = path.join(dataDir, 'blobs');
  await mkdir(dir, { recursive: true });
  return new FsBlobStore(dir);
}

/** The embedded edit store, `dataDir/layerloop.sqlite`; refused when empty beside stored blob files (see openStore). */
async function embeddedEdits(dataDir: string, blobs: BlobStore, options: SqliteEditStoreOptions = {}): Promise<SqliteEditStore> {
  await mkdir(dataDir, { recursive: true });
  const mustHoldData = blobs instanceof FsBlobStore && (await blobs.holdsAnyBlob());
  return new SqliteEditStore(path.join(dataDir, DATABASE_FILE), blobs, { ...options, mustHoldData });
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
      const sqlite = await embeddedEdits(selection.dataDir, opened.blobs);
      edits = sqlite;
      where = sqlite.file;
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
    health: async () => combineHealth(await Promise.all([opened.blobs.health(), edits.health()])),
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
  const blobs = await embeddedBlobs(dataDir);
  return { blobs, where: blobs.dir, removeTempFiles: () => blobs.removeTempFiles(), release: () => {} };
}
