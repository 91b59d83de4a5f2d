/**
 * Errors the panel shows as they are. Every message says what happened and what to do about it; anything
 * that is neither a UserError nor the client's ClientError is shown as "Unexpected error: ..." (a bug, or a
 * host failure).
 */
import { ClientError } from '../../shared/client';

export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** The text the panel shows for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof UserError || err instanceof ClientError) return err.message;
  if (err instanceof Error) return `Unexpected error: ${err.message}`;
  return `Unexpected error: ${String(err)}`;
}

export const MESSAGES = {
  noDocument: 'No document is open: open an image in Photoshop first.',
  historyElsewhere: "This document's layerloop history is in another workspace: answer the question in the panel first (Start a new history, or Cancel).",
  noLayer: 'No layer is selected: select a pixel layer in the Layers panel.',
  severalLayers: 'Several layers are selected: select exactly one pixel layer.',
  emptyLayer: 'The selected layer is empty: paint on it or select a layer with pixels.',
  outsideCanvas: 'The selected layer lies entirely outside the canvas: move it into view.',
  selectionMisses: 'The selection does not overlap the layer: select part of the layer, or deselect (Select > Deselect) to edit all of it.',
  sourceGone: 'The document or layer this edit started from was closed or deleted: the result is kept in the history list; restore it from there.',
  photoshopBusy: 'Photoshop is busy (a dialog or another plugin is working): finish that and try again.',
} as const;

/** Why a layer of this kind cannot be edited (null for pixel layers). */
export function layerKindProblem(kind: string, name: string): string | null {
  const layer = `"${name}"`;
  switch (kind) {
    case 'pixel':
      return null;
    case 'text':
      return `${layer} is a text layer: rasterize it (Layer > Rasterize > Type) or select a pixel layer.`;
    case 'smartObject':
      return `${layer} is a smart object: rasterize it (Layer > Rasterize > Smart Object) or select a pixel layer.`;
    case 'group':
      return `${layer} is a group: select a pixel layer inside it.`;
    case 'threeD':
    case 'video':
      return `${layer} is a ${kind === 'video' ? 'video' : '3D'} layer: rasterize it or select a pixel layer.`;
    case 'solidColor':
    case 'gradientFill':
    case 'pattern':
      return `${layer} is a fill layer and holds no pixels: rasterize it or select a pixel layer.`;
    default:
      return `${layer} is an adjustment layer (${kind}) and holds no pixels: select a pixel layer.`;
  }
}
