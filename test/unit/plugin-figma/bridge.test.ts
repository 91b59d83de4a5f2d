import { Bridge, MainRequestError } from '../../../plugin-figma/src/bridge';
import type { UiToMain } from '../../../plugin-figma/src/messages';

describe('the UI bridge', () => {
  it('pairs replies with requests, rejects failed ones, and drops what does not parse', async () => {
    const sent: UiToMain[] = [];
    const other: unknown[] = [];
    const invalid: string[] = [];
    const bridge = new Bridge((m) => sent.push(m), (m) => other.push(m), (r) => invalid.push(r));
    const placing = bridge.placeResults({ target: { kind: 'selection-or-viewport' }, instruction: 'x', documentId: 'd', editIds: ['e'], png: async () => new Uint8Array([1]) });
    await Promise.resolve(); // the PNG is asked for first
    const preparing = bridge.prepareEdit(null);
    expect(sent.map((m) => m.type)).toEqual(['place-result', 'prepare-edit']);
    const [placeId, prepareId] = sent.map((m) => ('requestId' in m ? m.requestId : ''));
    bridge.receive({ type: 'request-failed', requestId: prepareId, message: 'Select a layer to edit.' });
    bridge.receive({ type: 'placed', requestId: placeId, nodeIds: ['1:5'] });
    await expect(preparing).rejects.toEqual(new MainRequestError('Select a layer to edit.'));
    await expect(placing).resolves.toEqual(['1:5']);

    bridge.receive({ type: 'placed', requestId: 'r999', nodeIds: ['1:5'] });
    bridge.receive({ type: 'selection', selection: { ready: 'yes' } });
    bridge.receive({ type: 'error', message: 'hi' });
    expect(invalid).toEqual([
      'ignored a reply to an unknown request r999',
      'ignored a malformed main-thread message (selection): selection.ready: Invalid input: expected boolean, received string',
    ]);
    expect(other).toEqual([{ type: 'error', message: 'hi' }]);
  });

  it('places variations one message each, asking for each PNG only at its turn; a failed download abandons the placement', async () => {
    const sent: UiToMain[] = [];
    const bridge = new Bridge((m) => {
      sent.push(m);
      if (m.type === 'place-result') setTimeout(() => bridge.receive({ type: 'placed', requestId: m.requestId, nodeIds: [`1:${m.index}`] }), 0);
    }, () => {});
    const asked: number[] = [];
    const png = async (i: number) => {
      asked.push(i);
      expect(sent.filter((m) => m.type === 'place-result')).toHaveLength(i); // the previous one is placed already
      if (i === 2) throw new Error('download failed');
      return new Uint8Array([i]);
    };
    await expect(bridge.placeResults({ target: { kind: 'node', nodeId: '1:2' }, instruction: 'x', documentId: 'd', editIds: ['a', 'b', 'c'], png })).rejects.toThrow('download failed');
    expect(asked).toEqual([0, 1, 2]);
    expect(sent.map((m) => (m.type === 'place-result' ? `${m.type} ${m.index}/${m.count} ${m.editId}` : m.type))).toEqual(['place-result 0/3 a', 'place-result 1/3 b', 'place-abandon']);
  });
});
