/**
 * The plugin's client (plugin-uxp/src/api.ts) speaks tRPC's HTTP format over plain fetch rather than through
 * @trpc/client, whose httpLink needs FormData and AbortController (UXP 7.3 / Photoshop 25.2+; the plugin
 * supports 24.4+). This file binds that client to the server's router at compile time: `npm run typecheck`
 * fails when what the plugin sends or reads drifts from server/api/router.ts.
 */
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import type { HistoryNode } from '../../../plugin-uxp/src/api';
import { PROCEDURES } from '../../../plugin-uxp/src/api';
import type { AppRouter } from '../../../server/api/router';
import type { EditRequestInput, JobSnapshot } from '../../../shared/protocol';

type In = inferRouterInputs<AppRouter>;
type Out = inferRouterOutputs<AppRouter>;
type Assert<T extends true> = T;
type Extends<A, B> = [A] extends [B] ? true : false;

// what the plugin sends is accepted ...
export type Sends = [
  Assert<Extends<{ host: 'photoshop'; hostDocumentKey: string }, In['documents']['open']>>,
  Assert<Extends<{ documentId: string }, In['documents']['history']>>,
  Assert<Extends<EditRequestInput, In['edits']['create']>>,
  Assert<Extends<{ jobId: string; previewAfterStep?: number }, In['jobs']['get']>>,
  Assert<Extends<{ jobId: string }, In['jobs']['cancel']>>,
];
// ... and what it reads is there
export type Reads = [
  Assert<Extends<Out['documents']['open'], { documentId: string }>>,
  Assert<Extends<Out['documents']['history'], { nodes: HistoryNode[] }>>,
  Assert<Extends<Out['edits']['create'], { jobId: string; position: number; seed: number }>>,
  Assert<Extends<Out['jobs']['get'], JobSnapshot>>,
];

// the procedure paths the client calls exist on the router
type Leaf<R, P extends string> = P extends `${infer A}.${infer B}` ? (A extends keyof R ? Leaf<R[A], B> : never) : P extends keyof R ? R[P] : never;
type Exists<P extends string> = [Leaf<In, P>] extends [never] ? false : true;
type Called = (typeof PROCEDURES)[keyof typeof PROCEDURES];
export type Paths = Assert<Extends<{ [P in Called]: Exists<P> }[Called], true>>;

it('names the procedures the server serves (checked at compile time)', () => {
  expect(Object.values(PROCEDURES).sort()).toEqual(['documents.history', 'documents.open', 'edits.create', 'health', 'jobs.cancel', 'jobs.get']);
});
