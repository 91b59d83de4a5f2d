/**
 * EditSession: the state of a plugin panel's edit work and every change to it, one pure reducer (no DOM, no
 * host), shared by the Figma and Photoshop plugins. Each plugin renders it and adds its host's words.
 *
 * An Apply goes  idle -> preparing (the host reads the layer) -> uploading -> queued -> running -> placing -> done
 * and can end in failed or cancelled from any active phase. With several variations and the 'pick' policy the
 * job ends in picking instead: the user places the ones they want (each a placing step of its own). Job events
 * for another job, or arriving after the end, change nothing.
 *
 * Beside the edit: the document's history as the server lists it, a history edit pinned as the parent of the
 * next Apply ("continue from here"), and the last warning and error for the user.
 */
import type { JobEvent } from '../protocol';
import type { HistoryEntry } from './client';

export interface Preview {
  variation: number;
  step: number;
  dataUrl: string;
}

export interface Variation {
  index: number;
  editId: string;
  sha256: string;
  /** a small image (data: URL) once the plugin made one */
  thumbnail: string | null;
  placed: boolean;
}

export type EditPhase =
  | { name: 'idle' }
  /** the host reads the layer (and mask) */
  | { name: 'preparing' }
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
  /** downloading results and placing them as layers; `previews` stay shown meanwhile */
  | { name: 'placing'; jobId: string; seed: number; editIds: string[]; resultSha256s: string[]; previews: Preview[] }
  /** several results: the user picks which to place; `busy` while one is being placed */
  | { name: 'picking'; jobId: string; seed: number; variations: Variation[]; busy: boolean }
  | { name: 'done'; jobId: string; seed: number; editIds: string[]; layers: number }
  | { name: 'failed'; message: string }
  | { name: 'cancelled'; message: string };

/** What a job with several variations ends in: all of them placed at once, or a choice for the user. */
export type VariationPolicy = 'place-all' | 'pick';

export interface HistoryState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  /** as the server lists them: parents before children */
  entries: HistoryEntry[];
  message: string | null;
}

/** A history edit pinned as the parent of the next Apply. */
export interface PinnedEdit {
  editId: string;
  instruction: string;
  resultImageSha256: string;
}

export interface EditSession {
  policy: VariationPolicy;
  edit: EditPhase;
  history: HistoryState;
  continueFrom: PinnedEdit | null;
  /** something the user should know that did not stop the edit */
  warning: string | null;
  /** a failure outside the edit's own phases (placing a picked variation, restoring from history) */
  error: string | null;
}

export type SessionAction =
  | { type: 'start' }
  | { type: 'prepared' }
  | { type: 'job-created'; jobId: string; seed: number; position: number }
  | { type: 'job-event'; event: JobEvent }
  /** the results (or the picked ones) are placed as `layers` new layers */
  | { type: 'placed'; layers: number; indexes?: number[] }
  /** placing picked variations begins */
  | { type: 'place-picked' }
  | { type: 'thumbnail'; index: number; dataUrl: string }
  | { type: 'fail'; message: string }
  | { type: 'cancel-requested' }
  | { type: 'cancelled'; message?: string }
  | { type: 'dismiss' }
  | { type: 'warning'; message: string | null }
  | { type: 'error'; message: string | null }
  | { type: 'history-loading' }
  | { type: 'history-loaded'; entries: HistoryEntry[] }
  | { type: 'history-failed'; message: string }
  | { type: 'history-cleared' }
  | { type: 'continue-from'; entry: PinnedEdit | null };

export const IDLE: EditPhase = { name: 'idle' };

export function newSession(policy: VariationPolicy): EditSession {
  return { policy, edit: IDLE, history: { status: 'idle', entries: [], message: null }, continueFrom: null, warning: null, error: null };
}

const ACTIVE: readonly EditPhase['name'][] = ['preparing', 'uploading', 'queued', 'running', 'placing'];

/** An edit is under way: Apply is disabled. */
export function isActive(phase: EditPhase): boolean {
  return ACTIVE.includes(phase.name) || (phase.name === 'picking' && phase.busy);
}

/** Cancel does something now: before the job exists nothing is sent; while it runs, the server is asked. */
export function canCancel(phase: EditPhase): boolean {
  if (phase.name === 'preparing' || phase.name === 'uploading') return true;
  return (phase.name === 'queued' || phase.name === 'running') && !phase.cancelRequested;
}

export const CANCELLED_BEFORE_SENT = 'Cancelled. Nothing was sent to the server.';
export const CANCELLED_ON_SERVER = 'Cancelled. Nothing was added to the document.';
export const FINISHED_DESPITE_CANCEL = 'Cancelled, but the server had already finished: the result is in the history if you want it.';

function onJobEvent(phase: EditPhase, event: JobEvent, policy: VariationPolicy): EditPhase {
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
    case 'succeeded': {
      if (cancelRequested) return { name: 'cancelled', message: FINISHED_DESPITE_CANCEL };
      const previews = phase.name === 'running' ? phase.previews : [];
      if (policy === 'pick' && event.editIds.length > 1) {
        const variations = event.editIds.map((editId, index) => ({ index, editId, sha256: event.resultSha256s[index], thumbnail: null, placed: false }));
        return { name: 'picking', jobId, seed, variations, busy: false };
      }
      return { name: 'placing', jobId, seed, editIds: event.editIds, resultSha256s: event.resultSha256s, previews };
    }
    case 'failed':
      return { name: 'failed', message: `The edit failed on the server: ${event.message}` };
    case 'cancelled':
      return { name: 'cancelled', message: CANCELLED_ON_SERVER };
  }
}

function reduceEdit(phase: EditPhase, action: SessionAction, policy: VariationPolicy): EditPhase {
  switch (action.type) {
    case 'start':
      return isActive(phase) ? phase : { name: 'preparing' };
    case 'prepared':
      return phase.name === 'preparing' ? { name: 'uploading' } : phase;
    case 'job-created':
      return phase.name === 'uploading' ? { name: 'queued', jobId: action.jobId, seed: action.seed, position: action.position, cancelRequested: false } : phase;
    case 'job-event':
      return onJobEvent(phase, action.event, policy);
    case 'place-picked':
      return phase.name === 'picking' ? { ...phase, busy: true } : phase;
    case 'placed':
      if (phase.name === 'placing') return { name: 'done', jobId: phase.jobId, seed: phase.seed, editIds: phase.editIds, layers: action.layers };
      if (phase.name === 'picking') {
        const placed = new Set(action.indexes ?? []);
        return { ...phase, busy: false, variations: phase.variations.map((v) => (placed.has(v.index) ? { ...v, placed: true } : v)) };
      }
      return phase;
    case 'thumbnail':
      return phase.name === 'picking' ? { ...phase, variations: phase.variations.map((v) => (v.index === action.index ? { ...v, thumbnail: action.dataUrl } : v)) } : phase;
    case 'fail':
      if (phase.name === 'picking') return { ...phase, busy: false }; // the choice stays; the error says what failed
      return isActive(phase) ? { name: 'failed', message: action.message } : phase;
    case 'cancel-requested':
      if (phase.name === 'preparing' || phase.name === 'uploading') return { name: 'cancelled', message: CANCELLED_BEFORE_SENT };
      if (phase.name === 'queued' || phase.name === 'running') return { ...phase, cancelRequested: true };
      return phase;
    case 'cancelled':
      return isActive(phase) ? { name: 'cancelled', message: action.message ?? CANCELLED_ON_SERVER } : phase;
    case 'dismiss':
      return isActive(phase) ? phase : IDLE;
    default:
      return phase;
  }
}

export function reduceSession(session: EditSession, action: SessionAction): EditSession {
  switch (action.type) {
    case 'warning':
      return { ...session, warning: action.message };
    case 'error':
      return { ...session, error: action.message };
    case 'history-loading':
      return { ...session, history: { ...session.history, status: 'loading', message: null } };
    case 'history-loaded':
      return { ...session, history: { status: 'ready', entries: action.entries, message: null } };
    case 'history-failed':
      return { ...session, history: { ...session.history, status: 'error', message: action.message } };
    case 'history-cleared':
      // another server or document: its history and pinned edit are not this one's
      return { ...session, history: { status: 'idle', entries: [], message: null }, continueFrom: null };
    case 'continue-from':
      return { ...session, continueFrom: action.entry };
    default: {
      const edit = reduceEdit(session.edit, action, session.policy);
      if (edit === session.edit) return action.type === 'fail' ? { ...session, error: action.message } : session;
      // a new Apply starts with a clean slate; a failure while picking keeps the choice and says why
      if (action.type === 'start') return { ...session, edit, warning: null, error: null };
      if (action.type === 'fail' && edit.name === 'picking') return { ...session, edit, error: action.message };
      return { ...session, edit };
    }
  }
}

/** 0..1 for a progress bar, or null for "indeterminate" (preparing, uploading). */
export function progressFraction(phase: EditPhase): number | null {
  switch (phase.name) {
    case 'queued':
      return 0;
    case 'running':
      return phase.totalSteps > 0 ? Math.min(1, phase.step / phase.totalSteps) : 0;
    case 'placing':
    case 'picking':
    case 'done':
      return 1;
    default:
      return null;
  }
}

/** The line under the progress bar; `words` are the host's for the steps it does. */
export function phaseText(phase: EditPhase, words: { preparing: string; placing: string; done: (phase: Extract<EditPhase, { name: 'done' }>) => string }): string {
  switch (phase.name) {
    case 'idle':
      return '';
    case 'preparing':
      return words.preparing;
    case 'uploading':
      return 'Sending it to the server…';
    case 'queued':
      if (phase.cancelRequested) return 'Cancelling…';
      return phase.position === 0 ? 'Queued: starts next.' : `Queued: ${phase.position} edit${phase.position === 1 ? '' : 's'} ahead.`;
    case 'running':
      if (phase.cancelRequested) return 'Cancelling…';
      return phase.totalSteps > 0 ? `Step ${phase.step} of ${phase.totalSteps}` : 'Starting…';
    case 'placing':
      return words.placing;
    case 'picking':
      return phase.busy ? words.placing : `${phase.variations.length} variations: pick one to place as a layer, or place all. Seed ${phase.seed}.`;
    case 'done':
      return words.done(phase);
    case 'failed':
    case 'cancelled':
      return phase.message;
  }
}
