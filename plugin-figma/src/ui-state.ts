/**
 * The panel's state and every change to it: the Figma-specific part (settings, the file's key, the connection,
 * what the selection will do) around the shared EditSession (shared/client/session.ts: the edit, its progress,
 * the history, "continue from"), in one pure reducer (no DOM), so ui.ts only renders.
 */
import { newSession, phaseText as sessionPhaseText, reduceSession, type EditPhase, type EditSession, type HistoryEntry, type SessionAction } from '../../shared/client';
import type { ReferenceImage } from './bridge';
import type { SelectionSummary, Settings } from './messages';

export type Connection =
  | { status: 'unknown' }
  | { status: 'connecting' }
  | {
      status: 'connected';
      /** "tiny-klein-distilled (FLUX.2 [klein]) on cpu" */
      model: string;
      documentId: string;
      /** the model reads reference images: the panel offers "Use selection as reference" */
      readsReferences: boolean;
      /** "ben (studio-a)"; absent on a server without accounts */
      user?: string;
      /** the workspace the file's history is in, when it is not the user's default one */
      workspace?: string;
    }
  /**
   * the file's marker names a workspace the user is not in, and the user's own has no history for the file:
   * nothing is opened until the user answers `question` (Start opens a new history in their workspace)
   */
  | { status: 'elsewhere'; question: string }
  | { status: 'error'; message: string };

export interface UiState {
  /** null until the main thread's init */
  settings: Settings | null;
  documentKey: string | null;
  /** the file's history marker (as figma.root holds it, or as last opened) */
  historyMarker: string | null;
  connection: Connection;
  selection: SelectionSummary | null;
  /** the layer chosen as the reference image of the next Apply (kept until an Apply used it or Remove) */
  reference: ReferenceImage | null;
  /** Figma places every variation at once (the first visible): no picking */
  session: EditSession;
}

export const INITIAL_STATE: UiState = {
  settings: null,
  documentKey: null,
  historyMarker: null,
  connection: { status: 'unknown' },
  selection: null,
  reference: null,
  session: newSession('place-all'),
};

export type UiAction =
  | { type: 'init'; settings: Settings; documentKey: string; historyMarker: string | null; selection: SelectionSummary }
  | { type: 'history-marker'; historyMarker: string }
  | { type: 'settings'; settings: Settings }
  | { type: 'selection'; selection: SelectionSummary }
  | { type: 'connection'; connection: Connection }
  | { type: 'reference'; reference: ReferenceImage | null }
  | { type: 'session'; action: SessionAction };

/** The reference image the next Apply sends: none unless the connected server's model reads references. */
export function referenceToSend(state: Pick<UiState, 'connection' | 'reference'>): ReferenceImage | null {
  return state.connection.status === 'connected' && state.connection.readsReferences ? state.reference : null;
}

/** Edits of the history, newest first (source nodes are the uploaded originals, not worth listing). */
export function editEntries(entries: readonly HistoryEntry[]): HistoryEntry[] {
  return entries.filter((e) => e.kind === 'edit').reverse();
}

/** One line under the progress bar, in Figma's words. */
export function phaseText(phase: EditPhase): string {
  return sessionPhaseText(phase, {
    preparing: 'Exporting the layer from Figma…',
    placing: 'Placing the result…',
    done: (done) => `Done: ${done.layers === 1 ? 'a new layer' : `${done.layers} new layers (only the first is visible)`} above the source. Seed ${done.seed}.`,
  });
}

export function reduce(state: UiState, action: UiAction): UiState {
  switch (action.type) {
    case 'init':
      return { ...state, settings: action.settings, documentKey: action.documentKey, historyMarker: action.historyMarker, selection: action.selection };
    case 'history-marker':
      return { ...state, historyMarker: action.historyMarker };
    case 'settings':
      // another server: its documents and history are not this one's
      return { ...state, settings: action.settings, connection: { status: 'unknown' }, session: reduceSession(state.session, { type: 'history-cleared' }) };
    case 'selection':
      return { ...state, selection: action.selection };
    case 'connection':
      return { ...state, connection: action.connection };
    case 'reference':
      return { ...state, reference: action.reference };
    case 'session':
      return { ...state, session: reduceSession(state.session, action.action) };
  }
}
