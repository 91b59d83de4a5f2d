/**
 * The shared client (shared/client/client.ts) speaks tRPC's HTTP format over plain fetch and imports no server
 * code (the Photoshop panel compiles without Node's types). This file binds it to the server's router at compile
 * time: `npm run typecheck` fails when what the client sends or reads drifts from server/api/router.ts.
 */
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { createClient, type CancelResult, type FetchLike, type HistoryEntry, type ServerHealth } from '../../../shared/client';
import { appRouter, type AppRouter } from '../../../server/api/router';
import type { CreateEditResult, EditRequestInput, Host, MaskPreviewInput, MaskPreviewResult, JobEvent, JobSnapshot, WatchJobInput } from '../../../shared/protocol';

type In = inferRouterInputs<AppRouter>;
type Out = inferRouterOutputs<AppRouter>;
type Assert<T extends true> = T;
type Extends<A, B> = [A] extends [B] ? true : false;

// what the client sends is accepted ...
export type Sends = [
  Assert<Extends<{ host: Host; hostDocumentKey: string }, In['documents']['open']>>,
  Assert<Extends<{ documentId: string }, In['documents']['history']>>,
  Assert<Extends<EditRequestInput, In['edits']['create']>>,
  Assert<Extends<MaskPreviewInput, In['masks']['preview']>>,
  Assert<Extends<{ jobId: string; previewAfterStep?: number }, In['jobs']['get']>>,
  Assert<Extends<{ jobId: string }, In['jobs']['cancel']>>,
  Assert<Extends<{ jobId: string }, In['jobs']['watch']>>,
  Assert<Extends<In['jobs']['watch'], WatchJobInput>>,
];
// ... and what it reads is there
export type Reads = [
  Assert<Extends<Out['health'], ServerHealth>>,
  Assert<Extends<Out['documents']['open'], { documentId: string }>>,
  Assert<Extends<Out['documents']['history'], { nodes: HistoryEntry[] }>>,
  Assert<Extends<Out['edits']['create'], CreateEditResult>>,
  Assert<Extends<Out['masks']['preview'], MaskPreviewResult>>,
  Assert<Extends<Out['jobs']['get'], JobSnapshot>>,
  Assert<Extends<Out['jobs']['cancel'], CancelResult>>,
];
// the subscription yields tracked JobEvents
type Yielded<T> = T extends AsyncIterable<infer E> ? E : never;
export type Streams = Assert<Extends<Yielded<Out['jobs']['watch']>, JobEvent | [string, JobEvent] | { id: string; data: JobEvent }>>;

it('calls only procedures the router serves, each as the kind it is', async () => {
  // at run time the router keeps its procedures flat, by path ('documents.open')
  const procedures = new Map(Object.entries(appRouter._def.procedures as object).map(([path, p]) => [path, String((p as { _def?: { type?: unknown } })._def?.type)]));
  const called: string[] = [];
  const fetch: FetchLike = async (url, init) => {
    const path = /\/trpc\/([\w.]+)/.exec(url)?.[1] ?? '';
    called.push(`${init.method} ${path}`);
    return { ok: false, status: 599, headers: { get: () => null }, text: async () => '', arrayBuffer: async () => new ArrayBuffer(0) };
  };
  const client = createClient({ serverUrl: 'http://x', token: '', fetch, transport: 'sse' });
  const id = '11111111-1111-4111-8111-111111111111';
  const calls = [
    client.health(),
    client.openDocument('web', 'k'),
    client.history(id),
    client.createEdit({ documentId: id, parent: { kind: 'source', imageSha256: 'a'.repeat(64) }, regions: [{ instruction: 'x', maskSha256: null }] }),
    client.previewMask({ documentId: id, parent: { kind: 'source', imageSha256: 'a'.repeat(64) }, maskText: 'the circle' }),
    client.getJob(id),
    client.cancelJob(id),
    client.follow(id).next(),
  ];
  for (const call of calls) await call.catch(() => undefined);
  const kind = { query: 'GET', mutation: 'POST', subscription: 'GET' } as Record<string, string>;
  expect(called.length).toBeGreaterThanOrEqual(8);
  expect(called).toContain('POST masks.preview');
  for (const c of called) {
    const [method, path] = c.split(' ');
    expect(procedures.has(path)).toBe(true);
    expect(method).toBe(kind[procedures.get(path)!]);
  }
});
