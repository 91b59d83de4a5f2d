import { editEntries, INITIAL_STATE, phaseText, reduce, referenceToSend } from '../../../plugin-figma/src/ui-state';

describe('the panel state', () => {
  it('changing the server forgets the connection, history and pinned edit', () => {
    let s = reduce(INITIAL_STATE, { type: 'connection', connection: { status: 'connected', model: 'm', documentId: 'd', readsReferences: false } });
    s = reduce(s, {
      type: 'session',
      action: {
      type: 'history-loaded',
      entries: [
        { id: 's', parentId: null, kind: 'source', instruction: null, resultImageSha256: 'a', seed: null, variation: null, createdAt: '2026-01-01', authorName: null },
        { id: 'e1', parentId: 's', kind: 'edit', instruction: 'one', resultImageSha256: 'b', seed: 1, variation: 0, createdAt: '2026-01-02', authorName: null },
        { id: 'e2', parentId: 'e1', kind: 'edit', instruction: 'two', resultImageSha256: 'c', seed: 2, variation: 0, createdAt: '2026-01-03', authorName: null },
      ],
      },
    });
    expect(editEntries(s.session.history.entries).map((e) => e.id)).toEqual(['e2', 'e1']); // edits, newest first
    s = reduce(s, { type: 'session', action: { type: 'continue-from', entry: { editId: 'e1', instruction: 'one', resultImageSha256: 'b' } } });
    s = reduce(s, { type: 'settings', settings: { serverUrl: 'http://other:7860', token: '' } });
    expect(s.connection).toEqual({ status: 'unknown' });
    expect(s.session.history.entries).toEqual([]);
    expect(s.session.continueFrom).toBeNull();
  });

  it('says what happens in Figma’s words', () => {
    expect(phaseText({ name: 'preparing' })).toBe('Exporting the layer from Figma…');
    expect(phaseText({ name: 'done', jobId: 'j', seed: 42, editIds: ['e1', 'e2'], layers: 2 })).toBe('Done: 2 new layers (only the first is visible) above the source. Seed 42.');
    expect(phaseText({ name: 'done', jobId: 'j', seed: 7, editIds: ['e1'], layers: 1 })).toBe('Done: a new layer above the source. Seed 7.');
  });
});

describe('the reference image', () => {
  const image = { png: new Uint8Array([1, 2, 3]), width: 4, height: 3 };
  const reference = { nodeId: '1:2', name: 'Style', image };
  const connected = (readsReferences: boolean) => ({ status: 'connected' as const, model: 'm', documentId: 'd', readsReferences });

  it('is sent only while the connected server’s model reads references', () => {
    let s = reduce(INITIAL_STATE, { type: 'reference', reference });
    expect(referenceToSend(s)).toBeNull(); // not connected
    s = reduce(s, { type: 'connection', connection: connected(false) });
    expect(referenceToSend(s)).toBeNull();
    s = reduce(s, { type: 'connection', connection: connected(true) });
    expect(referenceToSend(s)).toBe(reference);
    s = reduce(s, { type: 'reference', reference: null });
    expect(referenceToSend(s)).toBeNull();
  });
});
