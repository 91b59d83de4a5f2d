/**
 * Which server document a Photoshop document is, and which stored edit each result layer holds.
 *
 * Both live in the document's own XMP (namespace in photoshop-host.ts), so they travel with the PSD through
 * save and reopen, and are written in the same modal scope and history suspension as the result layer they
 * describe: undoing an Apply removes the layer and its record together.
 *
 * - `documentKey`: a UUID, the hostDocumentKey for documents.open. Chosen on first use and written to XMP with
 *   the first result. Without XMP (Photoshop before 25.0, or a failing read) the key falls back to
 *   `photoshop-doc-<doc.id>@<session>`: doc.id is only valid while the document is open and restarts every
 *   session, so the session tag keeps two sessions' documents apart (such history is not found again after
 *   reopening).
 * - `layerEdits`: JSON {"v":1,"layers":{"<layerId>":"<editId>"},"places":{"<editId>":[left,top]}}: the edit a
 *   result layer shows, and where each edit's image sits in the document (used to restore an edit from the
 *   history list at the right place). Layer ids are stable in a PSD. Entries for deleted layers are dropped
 *   when the record is next written.
 *
 * - `historyMarker`: the workspace and document of the history the document belongs to
 *   (shared/client/history-marker.ts), so a user of another workspace is told whose it is. Written with the
 *   next result, or at once when the user starts a new history in their own workspace.
 *
 * When XMP cannot be written, records are kept in memory for this session and the caller gets a warning.
 */
import { HostUnsupportedError, type HostDocument, type PhotoshopHost } from './host';

export const XMP_DOCUMENT_KEY = 'documentKey';
export const XMP_LAYER_EDITS = 'layerEdits';
export const XMP_HISTORY_MARKER = 'historyMarker';
/** the most places kept (oldest dropped first): bounds the XMP packet */
export const MAX_RECORDED_PLACES = 2000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface DocumentIdentity {
  /** hostDocumentKey for documents.open */
  key: string;
  /** true: the key is (or will be, with the first result) stored in the document's XMP */
  persistent: boolean;
  /** true: the key was read from the document (so the server may hold history for it) */
  stored: boolean;
}

export interface EditRecords {
  v: 1;
  layers: Record<string, string>;
  places: Record<string, [number, number]>;
}

export interface Placement {
  layerId: number;
  editId: string;
  left: number;
  top: number;
}

function emptyRecords(): EditRecords {
  return { v: 1, layers: {}, places: {} };
}

/** Parses the XMP record; anything unreadable counts as empty (never blocks an edit). */
export function parseEditRecords(text: string | null): EditRecords {
  if (!text) return emptyRecords();
  try {
    const raw = JSON.parse(text) as Partial<EditRecords> | null;
    const out = emptyRecords();
    if (raw && typeof raw.layers === 'object' && raw.layers) {
      for (const [layer, edit] of Object.entries(raw.layers)) if (typeof edit === 'string') out.layers[layer] = edit;
    }
    if (raw && typeof raw.places === 'object' && raw.places) {
      for (const [edit, at] of Object.entries(raw.places)) {
        if (Array.isArray(at) && at.length === 2 && Number.isInteger(at[0]) && Number.isInteger(at[1])) out.places[edit] = [at[0], at[1]];
      }
    }
    return out;
  } catch {
    return emptyRecords();
  }
}

export class DocumentRecords {
  /** doc.id -> the key chosen this session (XMP's key wins when present) */
  private readonly keys = new Map<number, string>();
  /** doc.id -> records kept in memory (always written through; the only copy when XMP is unavailable) */
  private readonly memory = new Map<number, EditRecords>();
  /** doc.id -> the history marker this session opened (written to XMP with the next record) */
  private readonly markers = new Map<number, string>();

  constructor(
    private readonly host: PhotoshopHost,
    private readonly newUuid: () => string,
    /** distinguishes this plugin session in fallback keys */
    private readonly sessionTag: string,
  ) {}

  async identify(document: HostDocument): Promise<DocumentIdentity> {
    let stored: string | null;
    try {
      stored = await this.host.readXmpProperty(document.id, XMP_DOCUMENT_KEY);
    } catch (err) {
      if (!(err instanceof HostUnsupportedError)) throw err;
      return { key: this.fallbackKey(document.id), persistent: false, stored: false };
    }
    if (stored && UUID.test(stored)) {
      this.keys.set(document.id, stored);
      return { key: stored, persistent: true, stored: true };
    }
    let key = this.keys.get(document.id);
    if (!key || !UUID.test(key)) {
      key = this.newUuid();
      this.keys.set(document.id, key);
    }
    return { key, persistent: true, stored: false };
  }

  /** The document's history marker: the one this session opened, else the one in its XMP; null without either. */
  async historyMarker(document: HostDocument): Promise<string | null> {
    const opened = this.markers.get(document.id);
    if (opened) return opened;
    try {
      return await this.host.readXmpProperty(document.id, XMP_HISTORY_MARKER);
    } catch (err) {
      if (!(err instanceof HostUnsupportedError)) throw err;
      return null;
    }
  }

  /** The history this session opened for the document: written to XMP with the next record(). */
  openedHistory(documentId: number, marker: string): void {
    this.markers.set(documentId, marker);
  }

  /**
   * Writes the document key and history marker now (the user started a new history in their workspace). Call
   * inside a modal scope. Returns a warning for the user when XMP cannot hold them.
   */
  async recordHistory(document: HostDocument): Promise<string | null> {
    return this.record(document, []);
  }

  /** The stored edit a layer shows, or null (not a result layer, or placed elsewhere). */
  async editForLayer(documentId: number, layerId: number): Promise<string | null> {
    const records = await this.read(documentId);
    return records.layers[String(layerId)] ?? this.memory.get(documentId)?.layers[String(layerId)] ?? null;
  }

  /** Where an edit's image was placed, or null if this document never placed it. */
  async placeOf(documentId: number, editId: string): Promise<{ left: number; top: number } | null> {
    const records = await this.read(documentId);
    const at = records.places[editId] ?? this.memory.get(documentId)?.places[editId];
    return at ? { left: at[0], top: at[1] } : null;
  }

  /**
   * Remembers where edits made from this document belong (e.g. variations nobody placed yet), so they can be
   * restored at the right place; stored in XMP with the next record().
   */
  remember(documentId: number, editIds: readonly string[], at: { left: number; top: number }): void {
    const mem = this.memory.get(documentId) ?? emptyRecords();
    for (const editId of editIds) {
      delete mem.places[editId];
      mem.places[editId] = [at.left, at.top];
    }
    this.memory.set(documentId, mem);
  }

  /**
   * Records placements (and the document key) in XMP. Call inside the modal scope and history suspension that
   * created the layers. Returns a warning for the user when the record could only be kept in memory.
   */
  async record(document: HostDocument, placements: readonly Placement[]): Promise<string | null> {
    const mem = this.memory.get(document.id) ?? emptyRecords();
    for (const p of placements) addPlacement(mem, p);
    this.memory.set(document.id, mem);

    let current: EditRecords;
    let storedKey: string | null;
    try {
      current = parseEditRecords(await this.host.readXmpProperty(document.id, XMP_LAYER_EDITS));
      storedKey = await this.host.readXmpProperty(document.id, XMP_DOCUMENT_KEY);
    } catch (err) {
      if (!(err instanceof HostUnsupportedError)) throw err;
      return 'This Photoshop cannot store layerloop data in the document (XMP needs Photoshop 25.0 or later): after reopening it, result layers continue from their pixels.';
    }
    for (const [editId, at] of Object.entries(mem.places)) if (!(editId in current.places)) current.places[editId] = at;
    for (const p of placements) addPlacement(current, p);
    const existing = new Set(this.host.layerIds(document.id).map(String));
    for (const layer of Object.keys(current.layers)) if (!existing.has(layer)) delete current.layers[layer];
    const placeKeys = Object.keys(current.places);
    for (let i = 0; i < placeKeys.length - MAX_RECORDED_PLACES; i++) delete current.places[placeKeys[i]];

    const properties: Record<string, string> = { [XMP_LAYER_EDITS]: JSON.stringify(current) };
    const marker = this.markers.get(document.id);
    if (marker) properties[XMP_HISTORY_MARKER] = marker;
    if (!storedKey || !UUID.test(storedKey)) {
      const key = this.keys.get(document.id) ?? this.newUuid();
      this.keys.set(document.id, key);
      properties[XMP_DOCUMENT_KEY] = key;
    }
    try {
      await this.host.writeXmpProperties(document.id, properties);
      return null;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return `Could not store layerloop data in the document's metadata (${why}): after reopening it, result layers continue from their pixels.`;
    }
  }

  private async read(documentId: number): Promise<EditRecords> {
    try {
      return parseEditRecords(await this.host.readXmpProperty(documentId, XMP_LAYER_EDITS));
    } catch (err) {
      if (!(err instanceof HostUnsupportedError)) throw err;
      return this.memory.get(documentId) ?? emptyRecords();
    }
  }

  private fallbackKey(documentId: number): string {
    return `photoshop-doc-${documentId}@${this.sessionTag}`;
  }
}

function addPlacement(records: EditRecords, p: Placement): void {
  records.layers[String(p.layerId)] = p.editId;
  delete records.places[p.editId]; // re-insert: newest last, so pruning drops the oldest
  records.places[p.editId] = [p.left, p.top];
}
