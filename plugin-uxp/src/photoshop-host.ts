/**
 * The real PhotoshopHost: a thin pass-through to Photoshop's UXP modules (research/host_apis.md B5-B11), handed
 * in by index.ts (the unit tests hand in the fake modules the browser e2e test uses,
 * test/e2e/uxp-harness/fake-photoshop.js). Requires Photoshop 24.4+ (imaging); XMP needs 25.0+ (UXP 7.2) and
 * reports HostUnsupportedError before. The points marked [UNVERIFIED] in the research are handled defensively.
 */
import type * as Photoshop from 'photoshop';
import type { Document } from 'photoshop/dom/Document';
import type { Layer } from 'photoshop/dom/Layer';
import { MESSAGES, UserError } from './errors';
import {
  HostUnsupportedError,
  type Bounds,
  type ComponentSize,
  type CreateImageDataOptions,
  type DocumentMode,
  type GetLayerMaskOptions,
  type GetPixelsOptions,
  type GetSelectionOptions,
  type HistorySuspension,
  type HostDocument,
  type HostImageData,
  type HostLayer,
  type LayerLook,
  type LayerMasks,
  type ModalContext,
  type PhotoshopHost,
  type PixelsResult,
  type PutOptions,
} from './host';

/** The parts of require('photoshop') the host uses. */
export type PhotoshopModules = Pick<typeof Photoshop, 'action' | 'app' | 'constants' | 'core' | 'imaging'>;

/** The plugin's XMP namespace (properties documentKey, layerEdits: see identity.ts). */
export const XMP_NAMESPACE = 'http://ns.layerloop.dev/photoshop/1.0/';
export const XMP_PREFIX = 'layerloop';

type PsImageData = Awaited<ReturnType<typeof Photoshop.imaging.createImageDataFromBuffer>>;

/** The parts of require('uxp').xmp used here (the shipped typings declare `xmp` several times over). */
interface XmpProperty {
  value: unknown;
}
interface XmpMetaInstance {
  getProperty(ns: string, name: string): XmpProperty | undefined;
  setProperty(ns: string, name: string, value: string): void;
  serialize(): string;
}
export interface XmpModule {
  XMPMeta: { new (packet?: string): XmpMetaInstance; registerNamespace(ns: string, prefix: string): string };
}

const GRAY_PROFILE = 'Gray Gamma 2.2';

export class UxpPhotoshopHost implements PhotoshopHost {
  /** wrapper -> Photoshop's image data (putPixels/putLayerMask need the original) */
  private readonly raw = new WeakMap<HostImageData, PsImageData>();
  private readonly action: PhotoshopModules['action'];
  private readonly app: PhotoshopModules['app'];
  private readonly constants: PhotoshopModules['constants'];
  private readonly core: PhotoshopModules['core'];
  private readonly imaging: PhotoshopModules['imaging'];

  /** `xmp`: require('uxp').xmp, undefined before UXP 7.2 (Photoshop 25.0) */
  constructor(
    ps: PhotoshopModules,
    private readonly xmp: Partial<XmpModule> | undefined,
  ) {
    ({ action: this.action, app: this.app, constants: this.constants, core: this.core, imaging: this.imaging } = ps);
  }

  activeDocument(): HostDocument | null {
    let doc: Document | null;
    try {
      doc = this.app.activeDocument ?? null; // null on some versions, a throw on others, when nothing is open
    } catch {
      doc = null;
    }
    return doc ? toHostDocument(doc) : null;
  }

  activeLayers(documentID: number): HostLayer[] {
    const doc = this.doc(documentID);
    const out: HostLayer[] = [];
    const layers = doc.activeLayers;
    for (let i = 0; i < layers.length; i++) out.push(toHostLayer(layers[i]));
    return out;
  }

  findLayer(documentID: number, layerID: number): HostLayer | null {
    const doc = this.docOrNull(documentID);
    const layer = doc ? findLayer(doc, layerID) : null;
    return layer ? toHostLayer(layer) : null;
  }

  layerIds(documentID: number): number[] {
    const ids: number[] = [];
    const walk = (layers: ArrayLike<Layer> | null): void => {
      if (!layers) return;
      for (let i = 0; i < layers.length; i++) {
        ids.push(layers[i].id);
        walk(layers[i].layers);
      }
    };
    walk(this.doc(documentID).layers);
    return ids;
  }

  async selectionBounds(documentID: number): Promise<Bounds | null> {
    const doc = this.doc(documentID);
    const selection = (doc as { selection?: { bounds: Bounds | null } }).selection; // Document.selection: PS 25.0+
    if (selection !== undefined) return selection.bounds ? plainBounds(selection.bounds) : null;
    // 24.4-24.x: ask for the document's selection property; absent when nothing is selected, or a throw
    // (batchPlay throws on more failed gets since 23.4.1)
    let result: Record<string, unknown> | undefined;
    try {
      [result] = await this.action.batchPlay(
        [{ _obj: 'get', _target: [{ _property: 'selection' }, { _ref: 'document', _id: documentID }] }],
        { synchronousExecution: false },
      );
    } catch {
      return null;
    }
    const rect = result?.selection as Record<string, unknown> | undefined;
    if (!rect || typeof rect !== 'object') return null;
    const px = (v: unknown): number => (typeof v === 'number' ? v : Number((v as { _value?: unknown } | undefined)?._value));
    const b = { left: px(rect.left), top: px(rect.top), right: px(rect.right), bottom: px(rect.bottom) };
    return [b.left, b.top, b.right, b.bottom].every(Number.isFinite) ? b : null;
  }

  async getPixels(o: GetPixelsOptions): Promise<PixelsResult> {
    const r = await this.imaging.getPixels({
      documentID: o.documentID,
      layerID: o.layerID,
      sourceBounds: o.sourceBounds,
      componentSize: o.componentSize,
    });
    return { imageData: this.wrap(r.imageData), sourceBounds: plainBounds(r.sourceBounds) };
  }

  async getSelection(o: GetSelectionOptions): Promise<PixelsResult> {
    const r = await this.imaging.getSelection({ documentID: o.documentID, sourceBounds: o.sourceBounds });
    return { imageData: this.wrap(r.imageData), sourceBounds: plainBounds(r.sourceBounds) };
  }

  async layerMasks(documentID: number, layerID: number): Promise<LayerMasks> {
    const has = async (property: 'hasUserMask' | 'hasVectorMask'): Promise<boolean> => {
      const [r] = await this.action.batchPlay([{ _obj: 'get', _target: [{ _property: property }, { _ref: 'layer', _id: layerID }, { _ref: 'document', _id: documentID }] }], {});
      return r?.[property] === true;
    };
    return { user: await has('hasUserMask'), vector: await has('hasVectorMask') };
  }

  async getLayerMask(o: GetLayerMaskOptions): Promise<PixelsResult> {
    const r = await this.imaging.getLayerMask({ documentID: o.documentID, layerID: o.layerID, kind: 'user', sourceBounds: o.sourceBounds });
    return { imageData: this.wrap(r.imageData), sourceBounds: plainBounds(r.sourceBounds) };
  }

  async readXmpProperty(documentID: number, name: string): Promise<string | null> {
    const meta = await this.readXmp(documentID);
    const prop = meta.getProperty(XMP_NAMESPACE, name);
    return prop && prop.value !== undefined && prop.value !== null ? String(prop.value) : null;
  }

  async createImageData(data: Uint8Array, o: CreateImageDataOptions): Promise<HostImageData> {
    const gray = o.components === 1;
    const img = await this.imaging.createImageDataFromBuffer(data, {
      width: o.width,
      height: o.height,
      components: o.components,
      chunky: true,
      colorSpace: gray ? 'Grayscale' : 'RGB',
      // no profile: Photoshop takes the target document's (an untagged document's "None" is not a profile)
      colorProfile: gray ? GRAY_PROFILE : o.colorProfile || undefined,
    });
    return this.wrap(img);
  }

  async executeAsModal<T>(commandName: string, fn: (context: ModalContext) => Promise<T>): Promise<T> {
    try {
      return await this.core.executeAsModal(
        async (ctx) =>
          fn({
            get isCancelled() {
              return ctx.isCancelled;
            },
            suspendHistory: (documentID: number, name: string) => ctx.hostControl.suspendHistory({ documentID, name }),
            // hand back exactly what suspendHistory returned (Adobe's samples do; its shape differs by version)
            resumeHistory: (s: HistorySuspension, commit: boolean) => ctx.hostControl.resumeHistory(s, commit),
          }),
        { commandName },
      );
    } catch (err) {
      if (err instanceof UserError) throw err;
      // Adobe's sample: error number 9 = "host is in a modal state" (another plugin or a dialog)
      if ((err as { number?: unknown } | null)?.number === 9) throw new UserError(MESSAGES.photoshopBusy);
      throw err;
    }
  }

  async activateDocument(documentID: number): Promise<void> {
    const doc = this.doc(documentID);
    if (this.activeDocumentId() !== documentID) this.app.activeDocument = doc;
  }

  async createPixelLayer(documentID: number, name: string): Promise<HostLayer> {
    const layer = await this.doc(documentID).createPixelLayer({ name });
    if (!layer) throw new Error('Photoshop did not create the result layer');
    return toHostLayer(layer);
  }

  async moveLayerAbove(documentID: number, layerID: number, targetID: number): Promise<void> {
    const doc = this.doc(documentID);
    const layer = findLayer(doc, layerID);
    const target = findLayer(doc, targetID);
    if (!layer || !target) throw new Error(`cannot move layer ${layerID} above ${targetID}: not found`);
    layer.move(target, this.constants.ElementPlacement.PLACEBEFORE);
  }

  async putPixels(o: PutOptions): Promise<void> {
    await this.imaging.putPixels({
      documentID: o.documentID,
      layerID: o.layerID,
      imageData: this.unwrap(o.imageData),
      targetBounds: o.targetBounds,
      replace: true,
    });
  }

  async putLayerMask(o: PutOptions): Promise<void> {
    // Whether putLayerMask creates a missing mask is contradictory in the field (research B6/B8): make one
    // first (reveal all) when the layer has none.
    const [info] = await this.action.batchPlay(
      [{ _obj: 'get', _target: [{ _property: 'hasUserMask' }, { _ref: 'layer', _id: o.layerID }, { _ref: 'document', _id: o.documentID }] }],
      {},
    );
    if (!info?.hasUserMask) {
      await this.selectLayer(o.documentID, o.layerID);
      checkBatchPlay(
        await this.action.batchPlay(
          [
            {
              _obj: 'make',
              new: { _class: 'channel' },
              at: { _ref: 'channel', _enum: 'channel', _value: 'mask' },
              using: { _enum: 'userMaskEnabled', _value: 'revealAll' },
            },
          ],
          {},
        ),
        'creating the layer mask',
      );
    }
    await this.imaging.putLayerMask({
      documentID: o.documentID,
      layerID: o.layerID,
      kind: 'user',
      imageData: this.unwrap(o.imageData),
      targetBounds: o.targetBounds,
      replace: true,
    });
  }

  async setLayerLook(documentID: number, layerID: number, look: LayerLook): Promise<void> {
    const layer = findLayer(this.doc(documentID), layerID);
    if (!layer) throw new Error(`cannot style layer ${layerID}: not found`);
    layer.opacity = look.opacity;
    layer.fillOpacity = look.fillOpacity;
    layer.blendMode = look.blendMode as Layer['blendMode']; // Photoshop's own strings, read from a layer
  }

  async selectLayer(documentID: number, layerID: number): Promise<void> {
    await this.activateDocument(documentID); // batchPlay acts on the active document
    checkBatchPlay(
      await this.action.batchPlay([{ _obj: 'select', _target: [{ _ref: 'layer', _id: layerID }], makeVisible: false }], {}),
      'selecting the result layer',
    );
  }

  async writeXmpProperties(documentID: number, properties: Readonly<Record<string, string>>): Promise<void> {
    const meta = await this.readXmp(documentID);
    for (const [name, value] of Object.entries(properties)) meta.setProperty(XMP_NAMESPACE, name, value);
    const packet = meta.serialize();
    const target = [{ _property: 'XMPMetadataAsUTF8' }, { _ref: 'document', _id: documentID }];
    // Adobe's XMP guide documents `to: {_obj: 'XMPMetadataAsUTF8'}`; some plugins in the field use 'document'.
    // Each may throw or be ignored: a form counts only once the value reads back.
    const failures: string[] = [];
    for (const toClass of ['XMPMetadataAsUTF8', 'document']) {
      try {
        checkBatchPlay(await this.action.batchPlay([{ _obj: 'set', _target: target, to: { _obj: toClass, XMPMetadataAsUTF8: packet } }], {}), 'set');
        const back = await this.readXmp(documentID);
        const stored = Object.entries(properties).every(([name, value]) => String(back.getProperty(XMP_NAMESPACE, name)?.value ?? '') === value);
        if (stored) return;
        failures.push(`${toClass}: not stored`);
      } catch (err) {
        failures.push(`${toClass}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    throw new Error(`writing the document's XMP failed (${failures.join('; ')})`);
  }

  onDocumentChange(listener: () => void): void {
    // 'select' also fires for layers: only a document target counts
    void this.action.addNotificationListener(['select', 'open', 'close'], (event, descriptor) => {
      const target: unknown = descriptor?._target;
      const ref = Array.isArray(target) ? (target[0] as { _ref?: unknown } | undefined)?._ref : undefined;
      if (event !== 'select' || ref === 'document') listener();
    });
  }

  // ------------------------------------------------------------------------------------ helpers

  private activeDocumentId(): number | null {
    try {
      return this.app.activeDocument?.id ?? null; // null on some versions, a throw on others, when nothing is open
    } catch {
      return null;
    }
  }

  private async readXmp(documentID: number): Promise<XmpMetaInstance> {
    const xmp = this.xmp;
    if (!xmp || typeof xmp.XMPMeta !== 'function') {
      throw new HostUnsupportedError('XMP metadata needs Photoshop 25.0 or later');
    }
    let packet: unknown;
    try {
      const [r] = await this.action.batchPlay(
        [{ _obj: 'get', _target: [{ _property: 'XMPMetadataAsUTF8' }, { _ref: 'document', _id: documentID }] }],
        {},
      );
      if (r?._obj === 'error') throw new Error(String(r.message ?? 'batchPlay error'));
      packet = r?.XMPMetadataAsUTF8;
      xmp.XMPMeta.registerNamespace(XMP_NAMESPACE, XMP_PREFIX);
      return typeof packet === 'string' && packet ? new xmp.XMPMeta(packet) : new xmp.XMPMeta();
    } catch (err) {
      throw new HostUnsupportedError(`reading the document's XMP failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private doc(documentID: number): Document {
    const doc = this.docOrNull(documentID);
    if (!doc) throw new UserError(MESSAGES.sourceGone);
    return doc;
  }

  private docOrNull(documentID: number): Document | null {
    const docs = this.app.documents;
    for (let i = 0; i < docs.length; i++) if (docs[i].id === documentID) return docs[i];
    return null;
  }

  private wrap(img: PsImageData): HostImageData {
    const wrapped: HostImageData = {
      width: img.width,
      height: img.height,
      components: img.components,
      componentSize: img.componentSize as ComponentSize,
      colorProfile: img.colorProfile ?? '',
      getData: () => img.getData({ chunky: true }),
      dispose: () => {
        // typed Promise<void>, documented as synchronous
        void Promise.resolve(img.dispose()).catch(() => undefined);
      },
    };
    this.raw.set(wrapped, img);
    return wrapped;
  }

  private unwrap(data: HostImageData): PsImageData {
    const img = this.raw.get(data);
    if (!img) throw new Error('image data was not created by this host');
    return img;
  }
}

function checkBatchPlay(results: ReadonlyArray<{ _obj: string; message?: unknown }>, what: string): void {
  const bad = results.find((r) => r?._obj === 'error');
  if (bad) throw new Error(`${what} failed: ${String(bad.message ?? 'batchPlay error')}`);
}

function findLayer(doc: Document, layerID: number): Layer | null {
  const walk = (layers: ArrayLike<Layer> | null): Layer | null => {
    if (!layers) return null;
    for (let i = 0; i < layers.length; i++) {
      if (layers[i].id === layerID) return layers[i];
      const hit = walk(layers[i].layers);
      if (hit) return hit;
    }
    return null;
  };
  return walk(doc.layers);
}

function plainBounds(b: Bounds): Bounds {
  return { left: b.left, top: b.top, right: b.right, bottom: b.bottom };
}

const BITS: Record<string, HostDocument['bitsPerChannel']> = { bitDepth1: 1, bitDepth8: 8, bitDepth16: 16, bitDepth32: 32 };

/** The document's profile name, or '' when it has none (colorProfileName reads "None" then). */
function profileOf(doc: Document): string {
  try {
    const type = String(doc.colorProfileType);
    if (type !== 'customEnum' && type !== 'workingSpaceCode') return '';
    const name = doc.colorProfileName ?? '';
    return name === 'None' ? '' : name;
  } catch {
    return '';
  }
}

function toHostDocument(doc: Document): HostDocument {
  const colorProfile = profileOf(doc);
  return {
    id: doc.id,
    title: doc.title,
    width: doc.width,
    height: doc.height,
    mode: doc.mode as string as DocumentMode,
    bitsPerChannel: BITS[doc.bitsPerChannel as string] ?? 8,
    colorProfile,
  };
}

function toHostLayer(layer: Layer): HostLayer {
  return {
    id: layer.id,
    name: layer.name,
    kind: layer.kind as string,
    bounds: plainBounds(layer.boundsNoEffects),
    isBackground: layer.isBackgroundLayer,
    look: { opacity: layer.opacity, fillOpacity: layer.fillOpacity, blendMode: String(layer.blendMode) },
    isClippingMask: layer.isClippingMask,
  };
}
