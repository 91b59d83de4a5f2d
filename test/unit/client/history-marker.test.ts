/**
 * The file's history marker and openHistory over a scripted server that keeps documents per workspace as
 * documents.open does (create: false answers 404 with the server's message). The real server runs the same
 * flow in test/integration/isolation.test.ts.
 */
import { createClient, encodeHistoryMarker, openHistory, parseHistoryMarker, type FetchLike, type ResponseLike, type SignedIn } from '../../../shared/client';
import { NO_HISTORY_MESSAGE } from '../../../shared/protocol';

const A = { id: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', name: 'studio-a' };
const B = { id: 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', name: 'studio-b' };

const answer = (status: number, body: unknown): ResponseLike => ({
  ok: status === 200,
  status,
  headers: { get: () => null },
  text: async () => JSON.stringify(body),
  arrayBuffer: async () => new ArrayBuffer(0),
  body: null,
});

/** documents.open as the server answers it for a user whose default workspace is `defaultWorkspace`. */
function server(defaultWorkspace: string) {
  const documents = new Map<string, string>(); // workspace|key -> id
  const sent: Record<string, unknown>[] = [];
  const fetch: FetchLike = async (_url, init) => {
    const input = JSON.parse(String(init.body)) as { hostDocumentKey: string; workspaceId?: string; create?: boolean };
    sent.push(input);
    const where = `${input.workspaceId ?? defaultWorkspace}|${input.hostDocumentKey}`;
    let id = documents.get(where);
    if (!id && input.create === false) return answer(404, { error: { message: NO_HISTORY_MESSAGE, code: -32004, data: { code: 'NOT_FOUND', httpStatus: 404 } } });
    if (!id) documents.set(where, (id = `doc-${documents.size + 1}`));
    return answer(200, { result: { data: { documentId: id, created: false } } });
  };
  return { client: createClient({ serverUrl: 'http://gpu:7860', token: 't', fetch, transport: 'poll' }), sent, documents };
}

const me = (workspaces: { id: string; name: string }[]): SignedIn => ({ user: { id: 'u', name: 'ben', role: 'member' }, workspaces, defaultWorkspaceId: workspaces[0].id, via: 'token' });

describe('the history marker a file carries', () => {
  it('round-trips; anything unreadable is no marker (the file opens as before)', () => {
    const marker = { workspace: A, documentId: 'doc-1' };
    expect(parseHistoryMarker(encodeHistoryMarker(marker))).toEqual(marker);
    for (const bad of [null, '', 'not json', '{}', '{"v":2,"workspaceId":"a","workspaceName":"b","documentId":"c"}', '{"v":1,"workspaceId":"","workspaceName":"b","documentId":"c"}', `{"v":1,"workspaceId":"${'x'.repeat(201)}","workspaceName":"b","documentId":"c"}`]) {
      expect(parseHistoryMarker(bad)).toBeNull();
    }
  });
});

describe('openHistory', () => {
  it('no marker: the default workspace, created if new, sent exactly as before markers', async () => {
    const s = server(B.id);
    expect(await openHistory(s.client, 'figma', 'k', null, me([B]))).toEqual({ kind: 'opened', documentId: 'doc-1', workspace: B, marker: { workspace: B, documentId: 'doc-1' } });
    expect(s.sent).toEqual([{ host: 'figma', hostDocumentKey: 'k' }]);
  });

  it("a marker naming another of the user's workspaces opens the history there, not in the default one", async () => {
    const s = server(B.id);
    s.documents.set(`${A.id}|k`, 'doc-a');
    expect(await openHistory(s.client, 'figma', 'k', { workspace: A, documentId: 'doc-a' }, me([B, A]))).toMatchObject({ kind: 'opened', documentId: 'doc-a', workspace: A });
    expect(s.sent).toEqual([{ host: 'figma', hostDocumentKey: 'k', workspaceId: A.id }]);
  });

  it('a marker naming a workspace the user is not in: create: false; none there asks, Start creates', async () => {
    const s = server(B.id);
    const recorded = { workspace: A, documentId: 'doc-a' };
    const asked = await openHistory(s.client, 'photoshop', 'k', recorded, me([B]));
    expect(asked).toMatchObject({ kind: 'elsewhere', recorded: A, yours: B });
    expect(asked.kind === 'elsewhere' && asked.question).toBe("This file's layerloop history belongs to workspace «studio-a» (recorded in the file), which you are not a member of. Start a new history in «studio-b»?");
    expect(s.documents.size).toBe(0); // asking made nothing
    expect(await openHistory(s.client, 'photoshop', 'k', recorded, me([B]), { startNew: true })).toEqual({ kind: 'opened', documentId: 'doc-1', workspace: B, marker: { workspace: B, documentId: 'doc-1' } });
    // once the user's workspace has one, it opens without asking (even with the old marker still in the file)
    expect(await openHistory(s.client, 'photoshop', 'k', recorded, me([B]))).toMatchObject({ kind: 'opened', documentId: 'doc-1' });
    expect(s.sent.map((x) => x.create)).toEqual([false, undefined, false]);
  });

  it('a server without accounts (me is null): opened as before, no marker to write', async () => {
    const s = server(B.id);
    expect(await openHistory(s.client, 'figma', 'k', { workspace: A, documentId: 'doc-a' }, null)).toEqual({ kind: 'opened', documentId: 'doc-1', workspace: null, marker: null });
  });

  it('other failures are not questions: they reach the caller', async () => {
    const client = createClient({ serverUrl: 'http://gpu:7860', token: 't', fetch: async () => answer(401, { error: { message: 'revoked', data: { code: 'UNAUTHORIZED', httpStatus: 401 } } }), transport: 'poll' });
    await expect(openHistory(client, 'figma', 'k', { workspace: A, documentId: 'd' }, me([B]))).rejects.toMatchObject({ kind: 'auth' });
  });
});
