/**
 * The panel's state and every change to it: one pure reducer (no DOM), so the state machine is tested
 * alone and ui.ts only renders.
 *
 * An edit goes  idle -> exporting -> uploading -> queued -> running -> placing -> done
 * and can end in failed or cancelled from any active phase. Server events move queued/running/placing;
 * events for another job, or arriving after the end, change nothing.
 */
import type { JobEvent } from '../../shared/protocol';
import type { HistoryEntry } from './api';
import type { SelectionSummary, Settings } from './messages';

// ------------------------------------------------------------------------------------------- edit phase

export interface Preview {
  variation: number;
  step: number;
  dataUrl: string;
}

export type EditPhase =
  | { name: 'idle' }
  /** Figma is exporting the layer (and mask) */
  | { name: 'exporting' }
  | { name: 'uploading' }
  | { name: 'queued'; jobId: string; seed: number; position: number; cancelRequested: boolean }
  | {
      name: 'running';
      jobId: string;
      seed: number;
      step: number;
      totalSteps: number;
      /** the latest preview of each variation, by variation */
      previews: Preview[];
      cancelRequested: boolean;
    }
  /** downloading the results and placing them as layers */
  | { name: 'placing'; jobId: string; seed: number; editIds: string[] }
  | { name: 'done'; jobId: string; seed: number; editIds: string[]; nodeIds: string[] }
  | { name: 'failed'; message: string }
  | { name: 'cancelled'; message: string };

export type EditAction =
  | { type: 'start' }
  | { type: 'exported' }
  | { type: 'job-created'; jobId: string; seed: number; position: number }
  | { type: 'job-event'; event: JobEvent }
  | { type: 'placed'; nodeIds: string[] }
  | { type: 'fail'; message: string }
  | { type: 'cancel-requested' }
  | { type: 'cancelled'; message?: string }
  | { type: 'dismiss' };

export const IDLE: EditPhase = { name: 'idle' };

const ACTIVE: readonly EditPhase['name'][] = ['exporting', 'uploading', 'queued', 'running', 'placing'];

/** An edit is under way: Apply is disabled, Cancel enabled. */
export function isActive(phase: EditPhase): boolean {
  return ACTIVE.includes(phase.name);
}

export const CANCELLED_BEFORE_SENT = 'Cancelled. Nothing was sent to the server.';
export const CANCELLED_ON_SERVER = 'Cancelled. Nothing was added to the file.';
export const FINISHED_DESPITE_CANCEL = 'Cancelled, but the server had already finished: the result is in History if you want it.';

function onJobEvent(phase: EditPhase, event: JobEvent): EditPhase {
  if (phase.name !== 'queued' && phase.name !== 'running') return phase;
  if (event.jobId !== phase.jobId) return phase;
  const { jobId, seed, cancelRequested } = phase;
  const running = (): Extract<EditPhase, { name: 'running' }> =>
    phase.name === 'running' ? phase : { name: 'running', jobId, seed, step: 0, totalSteps: 0, previews: [], cancelRequested };
  switch (event.type) {
    case 'queued':
      return phase.name === 'queued' ? { ...phase, position: event.position } : phase;
    case 'started':
      return running();
    case 'progress':
      return { ...running(), step: event.step, totalSteps: event.totalSteps };
    case 'preview': {
      const current = running();
      const previews = current.previews.filter((p) => p.variation !== event.variation);
      previews.push({ variation: event.variation, step: event.step, dataUrl: event.dataUrl });
      previews.sort((a, b) => a.variation - b.variation);
      return { ...current, previews, totalSteps: current.totalSteps || event.totalSteps };
    }
    case 'succeeded':
      if (cancelRequested) return { name: 'cancelled', message: FINISHED_DESPITE_CANCEL };
      return { name: 'placing', jobId, seed, editIds: event.editIds };
    case 'failed':
      return { name: 'failed', message: `The edit failed on the server: ${event.message}` };
    case 'cancelled':
      return { name: 'cancelled', message: CANCELLED_ON_SERVER };
  }
}

export function reduceEdit(phase: EditPhase, action: EditAction): EditPhase {
  switch (action.type) {
    case 'start':
      return isActive(phase) ? phase : { name: 'exporting' };
    case 'exported':
      return phase.name === 'exporting' ? { name: 'uploading' } : phase;
    case 'job-created':
      return phase.name === 'uploading'
        ? { name: 'queued', jobId: action.jobId, seed: action.seed, position: action.position, cancelRequested: false }
        : phase;
    case 'job-event':
      return onJobEvent(phase, action.event);
    case 'placed':
      return phase.name === 'placing' ? { name: 'done', jobId: phase.jobId, seed: phase.seed, editIds: phase.editIds, nodeIds: action.nodeIds } : phase;
    case 'fail':
      return isActive(phase) ? { name: 'failed', message: action.message } : phase;
    case 'cancel-requested':
      if (phase.name === 'exporting' || phase.name === 'uploading') return { name: 'cancelled', message: CANCELLED_BEFORE_SENT };
      if (phase.name === 'queued' || phase.name === 'running') return { ...phase, cancelRequested: true };
      return phase;
    case 'cancelled':
      return isActive(phase) ? { name: 'cancelled', message: action.message ?? CANCELLED_ON_SERVER } : phase;
    case 'dismiss':
      return isActive(phase) ? phase : IDLE;
  }
}

/** 0..1 for the progress bar, or null for "indeterminate" (exporting, uploading). */
export function progressFraction(phase: EditPhase): number | null {
  switch (phase.name) {
    case 'queued':
      return 0;
    case 'running':
      return phase.totalSteps > 0 ? Math.min(1, phase.step / phase.totalSteps) : 0;
    case 'placing':
    case 'done':
      return 1;
    default:
      return null;
  }
}

/** One line under the progress bar. */
export function phaseText(phase: EditPhase): string {
  switch (phase.name) {
    case 'idle':
      return '';
    case 'exporting':
      return 'Exporting the layer from Figma…';
    case 'uploading':
      return 'Sending it to the server…';
    case 'queued':
      if (phase.cancelRequested) return 'Cancelling…';
      return phase.position === 0 ? 'Queued: starts next.' : `Queued: ${phase.position} edit${phase.position === 1 ? '' : 's'} ahead.`;
    case 'running':
      if (phase.cancelRequested) return 'Cancelling…';
      return phase.totalSteps > 0 ? `Step ${phase.step} of ${phase.totalSteps}` : 'Starting…';
    case 'placing':
      return 'Placing the result…';
    case 'done':
      return `Done: ${phase.nodeIds.length === 1 ? 'a new layer' : `${phase.nodeIds.length} new layers (only the first is visible)`} above the source. Seed ${phase.seed}.`;
    case 'failed':
    case 'cancelled':
      return phase.message;
  }
}

// ------------------------------------------------------------------------------------------- the panel

export type Connection =
  | { status: 'unknown' }
  | { status: 'connecting' }
  | { status: 'connected'; model: string; documentId: string }
  | { status: 'error'; message: string };

export interface HistoryState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  /** newest first, edits only */
  entries: HistoryEntry[];
  message: string | null;
}

export interface PinnedHistoryEdit {
  editId: string;
  instruction: string;
  resultImageSha256: string;
}

export interface UiState {
  /** null until the main thread's init */
  settings: Settings | null;
  documentKey: string | null;
  connection: Connection;
  selection: SelectionSummary | null;
  edit: EditPhase;
  history: HistoryState;
  /** a history edit pinned as the parent of the next Apply */
  continueFrom: PinnedHistoryEdit | null;
}

export const INITIAL_STATE: UiState = {
  settings: null,
  documentKey: null,
  connection: { status: 'unknown' },
  selection: null,
  edit: IDLE,
  history: { status: 'idle', entries: [], message: null },
  continueFrom: null,
};

export type UiAction =
  | { type: 'init'; settings: Settings; documentKey: string; selection: SelectionSummary }
  | { type: 'settings'; settings: Settings }
  | { type: 'selection'; selection: SelectionSummary }
  | { type: 'connection'; connection: Connection }
  | { type: 'history-loading' }
  | { type: 'history-loaded'; entries: HistoryEntry[] }
  | { type: 'history-failed'; message: string }
  | { type: 'continue-from'; entry: PinnedHistoryEdit | null }
  | { type: 'edit'; action: EditAction };

/** Edits of the history, newest first (source nodes are the uploaded originals, not worth listing). */
export function editEntries(entries: readonly HistoryEntry[]): HistoryEntry[] {
  return entries.filter((e) => e.kind === 'edit').reverse();
}

export function reduce(state: UiState, action: UiAction): UiState {
  switch (action.type) {
    case 'init':
      return { ...state, settings: action.settings, documentKey: action.documentKey, selection: action.selection };
    case 'settings':
      // another server: its documents and history are not this one's
      return {
        ...state,
        settings: action.settings,
        connection: { status: 'unknown' },
        history: INITIAL_STATE.history,
        continueFrom: null,
      };
    case 'selection':
      return { ...state, selection: action.selection };
    case 'connection':
      return { ...state, connection: action.connection };
    case 'history-loading':
      return { ...state, history: { ...state.history, status: 'loading', message: null } };
    case 'history-loaded':
      return { ...state, history: { status: 'ready', entries: editEntries(action.entries), message: null } };
    case 'history-failed':
      return { ...state, history: { ...state.history, status: 'error', message: action.message } };
    case 'continue-from':
      return { ...state, continueFrom: action.entry };
    case 'edit':
      return { ...state, edit: reduceEdit(state.edit, action.action) };
  }
}
