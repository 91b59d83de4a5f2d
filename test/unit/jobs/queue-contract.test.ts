/**
 * The JobQueue and JobEvents contracts (contract.ts) on the in-process implementations, recording through the
 * embedded SQLite store. The Redis implementations pass the same suites in test/backends/redis-queue.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryJobEvents } from '../../../server/jobs/events';
import { JobLedger } from '../../../server/jobs/ledger';
import { JobQueue } from '../../../server/jobs/queue';
import { openStore } from '../../../server/store';
import { jobEventsContract, jobQueueContract } from './contract';

describe('in-process JobQueue: the JobQueue contract', () => {
  jobQueueContract(async ({ run, maxLength, maxPerDocument }) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'layerloop-queue-contract-'));
    const store = await openStore(dir);
    const queue = new JobQueue({ run, maxLength, maxPerDocument, ledger: new JobLedger(store.edits), log: () => {} });
    return {
      queue,
      store,
      async close() {
        await queue.close({ timeoutMs: 0, graceMs: 100 });
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
});

describe('MemoryJobEvents: the JobEvents contract', () => {
  jobEventsContract(async () => ({ events: new MemoryJobEvents(), close: async () => {} }));
});
