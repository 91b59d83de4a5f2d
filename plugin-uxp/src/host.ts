/**
 * PhotoshopHost: the only door from the panel's logic to Photoshop (STYLE 13, DESIGN 7).
 *
 * The port mirrors the Photoshop UXP calls the plugin needs, one method per host call, with Photoshop's own
 * semantics kept on purpose so the fake (test/unit/plugin-uxp/fake-photoshop.ts) can reproduce them and the
 * logic is tested against them (research/host_apis.md B6-B11):
 *
 * - Bounds are half-open in document pixels: {left:0, top:0, right:10, bottom:10} covers pixels 0..9.
 * - getPixels/getSelection trim the requested bounds to the region that holds data and report the trimmed
 *   region; callers must use the returned `sourceBounds`, never the requested ones.
 * - 16-bit pixel data runs 0..32768 (not 0..65535); 8-bit 0..255.
 * - Every HostImageData must be dispose()d.
 * - Everything that changes a document (create/move/put/select/XMP write) throws unless it runs inside
 *   executeAsModal. Reads may run anywhere; the plugin still reads inside a short modal scope as Adobe's
 *   samples do. Only one modal scope may be open at a time.
 * - History: changes inside suspendHistory .. resumeHistory(commit=true) become one history state (one undo
 *   step); resumeHistory(commit=false) rolls the document back. After the user cancels (Escape on the progress
 *   bar), host calls throw, resumeHistory too; a modal callback that throws has its suspensions cancelled.
 * - batchPlay acts on the active document: activate the document before changing it.
 * - Untagged documents report no profile ('' here; Photoshop's colorProfileName says "None"), which must never
 *   be passed on as a profile name.
 *
 * No diffusion, server or DOM concepts here: this is Photoshop, described.
 */

/** Half-open rectangle in document pixels (right/bottom exclusive), as Photoshop reports it. */
export interface Bounds {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** Photoshop's document colour modes (constants.DocumentMode values). */
export type DocumentMode =
  | 'bitmapMode'
  | 'CMYKColorMode'
  | 'duotoneMode'
  | 'grayscaleMode'
  | 'indexedColorMode'
  | 'labColorMode'
  | 'multichannelMode'
  | 'RGBColorMode';

export interface HostDocument {
  /** session-scoped: valid only while the document is open (research B11) */
  id: number;
  title: string;
  width: number;
  height: number;
  mode: DocumentMode;
  bitsPerChannel: 1 | 8 | 16 | 32;
  /** the document's ICC profile name ('' when untagged: colorProfileType is neither CUSTOM nor WORKING) */
  colorProfile: string;
}

/**
 * Photoshop's layer kinds (constants.LayerKind values), e.g. 'pixel', 'text', 'smartObject', 'group',
 * 'curves', 'solidColor'. Kept as Photoshop's strings; the logic only asks "is it 'pixel'?".
 */
export type LayerKind = string;

export interface HostLayer {
  id: number;
  name: string;
  kind: LayerKind;
  /** layer.boundsNoEffects: the pixel extent; all zeros for an empty layer */
  bounds: Bounds;
  isBackground: boolean;
  /** how the layer shows over what is below it */
  look: LayerLook;
  /** clipped to the layer below (Create Clipping Mask) */
  isClippingMask: boolean;
}

export interface LayerLook {
  /** 0..100 */
  opacity: number;
  /** 0..100 */
  fillOpacity: number;
  /** Photoshop's BlendMode value: 'normal', 'multiply', ... ('passThrough' for groups) */
  blendMode: string;
}

export interface LayerMasks {
  /** a pixel mask (Layer > Layer Mask) */
  user: boolean;
  /** a vector mask (Layer > Vector Mask), which the imaging API cannot read */
  vector: boolean;
}

export interface GetLayerMaskOptions {
  documentID: number;
  layerID: number;
  sourceBounds: Bounds;
}

export type ComponentSize = 8 | 16 | 32;

/** Photoshop's PhotoshopImageData, reduced to what the plugin reads. */
export interface HostImageData {
  readonly width: number;
  readonly height: number;
  /** 3 (RGB, e.g. a Background layer), 4 (RGBA), 1 (a selection or mask) */
  readonly components: number;
  readonly componentSize: ComponentSize;
  /** the ICC profile name of the data, e.g. 'sRGB IEC61966-2.1'; '' for masks */
  readonly colorProfile: string;
  /** chunky (interleaved) samples; 8-bit -> Uint8Array, 16-bit -> Uint16Array (0..32768), 32-bit -> Float32Array */
  getData(): Promise<Uint8Array | Uint16Array | Float32Array>;
  dispose(): void;
}

export interface PixelsResult {
  imageData: HostImageData;
  /** the trimmed region the data covers: always map data with these, not the requested bounds */
  sourceBounds: Bounds;
}

export interface GetPixelsOptions {
  documentID: number;
  layerID: number;
  /** omitted: the whole layer */
  sourceBounds?: Bounds;
  /** the sample size to deliver; Photoshop converts if the document's depth differs */
  componentSize: ComponentSize;
}

export interface GetSelectionOptions {
  documentID: number;
  sourceBounds: Bounds;
}

export interface CreateImageDataOptions {
  width: number;
  height: number;
  /** 4: RGBA 8-bit pixels; 1: an 8-bit grayscale mask (255 = reveal) */
  components: 1 | 4;
  /** RGBA only: the profile the pixels are in (the one getPixels reported), so Photoshop does not convert them */
  colorProfile?: string;
}

export interface PutOptions {
  documentID: number;
  layerID: number;
  imageData: HostImageData;
  /** only left/top position the data; width/height must equal the image's */
  targetBounds: { left: number; top: number; width: number; height: number };
}

export interface HistorySuspension {
  readonly historySuspensionID: number;
}

/** What executeAsModal hands its callback (Photoshop's ExecutionContext, reduced). */
export interface ModalContext {
  /** the user pressed Escape / Cancel on Photoshop's progress bar */
  readonly isCancelled: boolean;
  suspendHistory(documentID: number, name: string): Promise<HistorySuspension>;
  /** commit=false drops every change since suspendHistory */
  resumeHistory(suspension: HistorySuspension, commit: boolean): Promise<void>;
}

/** Thrown by the host for a feature this Photoshop lacks (e.g. XMP before 25.0): callers fall back. */
export class HostUnsupportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostUnsupportedError';
  }
}

export interface PhotoshopHost {
  // ------------------------------------------------------------------ reads (allowed anywhere)

  /** null when no document is open */
  activeDocument(): HostDocument | null;
  /** the selected layers of the document, top-most first as Photoshop reports them */
  activeLayers(documentID: number): HostLayer[];
  /** a layer anywhere in the document (groups searched), or null */
  findLayer(documentID: number, layerID: number): HostLayer | null;
  /** every layer id in the document (groups searched) */
  layerIds(documentID: number): number[];
  /** the bounds of the active selection (may exceed the canvas), or null when nothing is selected */
  selectionBounds(documentID: number): Promise<Bounds | null>;
  getPixels(options: GetPixelsOptions): Promise<PixelsResult>;
  /** the selection as 1-component 8-bit data (255 = selected, soft edges in between) */
  getSelection(options: GetSelectionOptions): Promise<PixelsResult>;
  /** which masks the layer has */
  layerMasks(documentID: number, layerID: number): Promise<LayerMasks>;
  /** the layer's user mask over `sourceBounds`, 1-component 8-bit (255 = reveal) */
  getLayerMask(options: GetLayerMaskOptions): Promise<PixelsResult>;
  /** a property of the plugin's XMP namespace in the document's XMP, or null; HostUnsupportedError without XMP */
  readXmpProperty(documentID: number, name: string): Promise<string | null>;
  /** builds image data from raw samples (length must be width*height*components) */
  createImageData(data: Uint8Array, options: CreateImageDataOptions): Promise<HostImageData>;

  // ------------------------------------------------------------------ modal scope

  /** runs `fn` as the single modal scope; throws at once if Photoshop is already modal */
  executeAsModal<T>(commandName: string, fn: (context: ModalContext) => Promise<T>): Promise<T>;

  // ------------------------------------------------------------------ writes (inside executeAsModal only)

  /** makes the document the active one (what batchPlay and new layers act on) */
  activateDocument(documentID: number): Promise<void>;
  /** a new, empty pixel layer in the active document (where Photoshop puts it is unspecified: move it) */
  createPixelLayer(documentID: number, name: string): Promise<HostLayer>;
  /** moves `layerID` directly above `targetID` (into the target's group when it is in one) */
  moveLayerAbove(documentID: number, layerID: number, targetID: number): Promise<void>;
  putPixels(options: PutOptions): Promise<void>;
  /** writes the layer's user (pixel) mask, creating it if the layer has none; 1-component data */
  putLayerMask(options: PutOptions): Promise<void>;
  /** sets the layer's opacity, fill opacity and blend mode */
  setLayerLook(documentID: number, layerID: number, look: LayerLook): Promise<void>;
  /** makes the layer the only active layer */
  selectLayer(documentID: number, layerID: number): Promise<void>;
  /** sets properties of the plugin's XMP namespace (checked by reading them back); HostUnsupportedError without XMP */
  writeXmpProperties(documentID: number, properties: Readonly<Record<string, string>>): Promise<void>;

  // ------------------------------------------------------------------ events

  /** another document became active, or one was opened or closed */
  onDocumentChange(listener: () => void): void;
}

export function boundsWidth(b: Bounds): number {
  return b.right - b.left;
}

export function boundsHeight(b: Bounds): number {
  return b.bottom - b.top;
}

export function isEmptyBounds(b: Bounds): boolean {
  return b.right <= b.left || b.bottom <= b.top;
}

/** The overlap of two half-open rectangles (empty when they do not overlap: right <= left). */
export function intersectBounds(a: Bounds, b: Bounds): Bounds {
  return {
    left: Math.max(a.left, b.left),
    top: Math.max(a.top, b.top),
    right: Math.min(a.right, b.right),
    bottom: Math.min(a.bottom, b.bottom),
  };
}
