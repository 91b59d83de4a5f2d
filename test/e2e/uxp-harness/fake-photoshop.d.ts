/** Types of fake-photoshop.js (see there): what the tests read; the modules go to the real host as Photoshop's. */
export interface FakeBounds {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export interface FakeDump {
  width: number;
  height: number;
  active: number[];
  selection: number[];
  layers: { id: number; name: string; bounds: FakeBounds; rgba: number[]; mask: number[] | null; look: { opacity: number; fillOpacity: number; blendMode: string } }[];
}

export interface FakeLayer {
  id: number;
  name: string;
  isClippingMask: boolean;
  __vectorMask: boolean;
  __look: { opacity: number; fillOpacity: number; blendMode: string };
}

export interface FakeDocument {
  id: number;
  title: string;
  layers: FakeLayer[];
}

export interface FakePhotoshopHooks {
  problems: string[];
  writes: { kind: string; documentID: number; layerID: number }[];
  history: string[];
  document: FakeDocument;
  source: FakeLayer;
  readonly modal: boolean;
  cancelModal(): void;
  openAnotherDocument(title?: string): FakeDocument;
  setEllipseSelection(cx: number, cy: number, rx: number, ry: number, feather: number): void;
  setSourceMask(mask: Uint8Array): void;
  select(layerID: number): void;
  addLayer(name: string, left: number, top: number, width: number, height: number, rgba: ArrayLike<number>): number;
  xmp(): string;
  dump(): FakeDump;
}

export interface FakePhotoshopOptions {
  width?: number;
  height?: number;
  fixture?: { width: number; height: number; rgba: Uint8Array };
  offset?: { x: number; y: number };
  /** null: an untagged document */
  colorProfile?: string | null;
  bitsPerChannel?: 8 | 16 | 32;
  /** Photoshop's major version: 24 lacks Document.selection and uxp.xmp */
  version?: 24 | 25;
}

export function createFakePhotoshop(options?: FakePhotoshopOptions): { modules: { photoshop: object; uxp: { xmp?: object } }; hooks: FakePhotoshopHooks };
