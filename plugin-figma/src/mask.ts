/**
 * Mask export: the mask shape rendered in the source's frame of reference.
 *
 * A temporary frame (black, clipping) is made exactly over the source's absolute bounds; a clone of the
 * mask shape goes inside at the shape's own absolute position and is painted white keeping its alpha
 * (mask-paint.ts). Exported at the source's scale, the frame gives a PNG of the source's size where white =
 * edit, black = keep, gray = partly (blurred or semi-transparent parts). The frame (and the clone in it) is
 * removed whatever happens, before this returns or throws; if the plugin is closed meanwhile (the export then
 * never returns), the controller's close and start sweeps remove it (it is marked temporary).
 *
 * Undo: the user's own changes are committed as their undo step first, so the frame's create/remove pair (a
 * no-op) joins the placement's undo step instead of the user's last action.
 */
import { invert, multiply, pngSize } from './geometry';
import { PluginError, type FigmaHost, type HostNode } from './host';
import type { PngImage } from './messages';

export const MASK_FRAME_NAME = 'layerloop mask (temporary)';

export async function exportMask(host: FigmaHost, source: HostNode, mask: HostNode): Promise<PngImage> {
  const bounds = source.bounds;
  if (!bounds) throw new PluginError(`"${source.name}" has no bounds on the page to put a mask over.`);
  host.commitUndo();
  const frameId = host.createMaskFrame(bounds, MASK_FRAME_NAME);
  try {
    const cloneId = host.cloneNode(mask.id);
    try {
      host.appendChild(frameId, cloneId);
    } catch (err) {
      host.remove(cloneId); // still on the page, outside the frame
      throw err;
    }
    const frame = await host.node(frameId);
    if (!frame) throw new Error('the temporary mask frame disappeared while exporting');
    // appendChild kept the clone's relativeTransform (relative to the shape's old container): put it back
    // where the shape is on the page, now relative to the frame
    host.setRelativeTransform(cloneId, multiply(invert(frame.absoluteTransform), mask.absoluteTransform));
    await host.paintAsMask(cloneId);
    const png = await host.exportPng(frameId);
    const size = pngSize(png);
    if (!size) throw new Error('Figma exported the mask in an unexpected format (not a PNG)');
    return { png, ...size };
  } finally {
    try {
      host.remove(frameId);
    } catch {
      // already gone (the user undid or deleted it): nothing left to clean up
    }
  }
}
