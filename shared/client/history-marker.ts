/**
 * Whose layerloop history a file holds, and how a plugin opens it.
 *
 * The server never says whether another workspace knows a file's key (no existence oracle: documents.open with
 * create: false answers the same 404 for a key nobody knows and for one only another workspace knows). So the
 * file itself carries the marker: each plugin records in the file (Figma: figma.root's shared plugin data;
 * Photoshop: the document's XMP) the workspace and document of the history it opened, and `openHistory` reads it
 * against `me`. A marker naming a workspace the user is not a member of makes the plugin open with create: false
 * and, when the user's own workspace has no history for the file, ask before starting one there.
 */
import { ClientError } from './errors';
import type { LayerloopClient, SignedIn } from './client';
import type { Host } from '../protocol';

export interface WorkspaceRef {
  id: string;
  name: string;
}

/** What the file records about the history it belongs to. */
export interface HistoryMarker {
  workspace: WorkspaceRef;
  documentId: string;
}

const MAX_FIELD = 200;
const field = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_FIELD;

/** The marker as the file stores it (a short JSON text). */
export function encodeHistoryMarker(marker: HistoryMarker): string {
  return JSON.stringify({ v: 1, workspaceId: marker.workspace.id, workspaceName: marker.workspace.name, documentId: marker.documentId });
}

/** The file's marker, or null when it has none or it cannot be read (then the file is opened as before). */
export function parseHistoryMarker(text: string | null | undefined): HistoryMarker | null {
  if (!text) return null;
  try {
    const raw = JSON.parse(text) as Record<string, unknown> | null;
    if (!raw || raw.v !== 1 || !field(raw.workspaceId) || !field(raw.workspaceName) || !field(raw.documentId)) return null;
    return { workspace: { id: raw.workspaceId, name: raw.workspaceName }, documentId: raw.documentId };
  } catch {
    return null;
  }
}

/** The question a panel asks when the file's history is in a workspace the user is not a member of. */
export function elsewhereQuestion(recorded: WorkspaceRef, yours: WorkspaceRef): string {
  return `This file's layerloop history belongs to workspace «${recorded.name}» (recorded in the file), which you are not a member of. Start a new history in «${yours.name}»?`;
}

export type OpenedHistory =
  /**
   * `marker`: what the file should record now (null from a server without accounts, which names no workspace);
   * `workspace`: where the history is, for the panel to show
   */
  | { kind: 'opened'; documentId: string; workspace: WorkspaceRef | null; marker: HistoryMarker | null }
  /** the file names a workspace the user is not in, and the user's own has no history for it: ask (`question`) */
  | { kind: 'elsewhere'; recorded: WorkspaceRef; yours: WorkspaceRef; question: string };

/** The user's default workspace, as `me` lists it. */
function defaultWorkspace(me: SignedIn): WorkspaceRef {
  const w = me.workspaces.find((x) => x.id === me.defaultWorkspaceId) ?? me.workspaces[0];
  return w ? { id: w.id, name: w.name } : { id: me.defaultWorkspaceId, name: me.defaultWorkspaceId };
}

/**
 * Opens the file's history for the signed-in user (`me`; null: a server without accounts, opened as before).
 * - The marker names one of the user's workspaces: the history there (members continue each other's work).
 * - It names another workspace: the history the user's own workspace already has for the file, if any
 *   (create: false); if none, 'elsewhere' (nothing is created) unless `startNew` (the user chose Start).
 * - No marker: the user's default workspace, created if new (as before markers).
 */
export async function openHistory(
  client: Pick<LayerloopClient, 'openDocument'>,
  host: Host,
  hostDocumentKey: string,
  recorded: HistoryMarker | null,
  me: SignedIn | null,
  options: { startNew?: boolean } = {},
): Promise<OpenedHistory> {
  if (me === null) return { kind: 'opened', documentId: await client.openDocument(host, hostDocumentKey), workspace: null, marker: null };
  const yours = defaultWorkspace(me);
  const member = recorded ? me.workspaces.find((w) => w.id === recorded.workspace.id) : undefined;
  const workspace = member ? { id: member.id, name: member.name } : yours;
  const foreign = recorded !== null && !member;
  let documentId: string;
  try {
    documentId = await client.openDocument(host, hostDocumentKey, {
      // only what differs from the defaults: a server from before these options refuses unknown fields
      ...(workspace.id !== me.defaultWorkspaceId ? { workspaceId: workspace.id } : {}),
      ...(foreign && !options.startNew ? { create: false } : {}),
    });
  } catch (err) {
    if (foreign && !options.startNew && err instanceof ClientError && err.kind === 'not-found') {
      return { kind: 'elsewhere', recorded: recorded.workspace, yours, question: elsewhereQuestion(recorded.workspace, yours) };
    }
    throw err;
  }
  return { kind: 'opened', documentId, workspace, marker: { workspace, documentId } };
}
