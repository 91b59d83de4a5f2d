/** Types of fake-figma.js (see there): what the tests read; `figma` is passed to the real host as its PluginAPI. */
export interface FakeNode {
  id: string;
  type: string;
  name: string;
  parent: FakeNode | null;
  children: FakeNode[];
  removed: boolean;
  visible: boolean;
  opacity: number;
  blendMode: string;
  isMask: boolean;
  width: number;
  height: number;
  relativeTransform: number[][];
  fills: { type: string; [key: string]: unknown }[];
  strokes: { type: string; [key: string]: unknown }[];
  effects: { type: string; [key: string]: unknown }[];
  getPluginData(key: string): string;
  setPluginData(key: string, value: string): void;
  getSharedPluginData(namespace: string, key: string): string;
  setSharedPluginData(namespace: string, key: string, value: string): void;
}

export interface FakeLayer {
  id: string;
  type: string;
  name: string;
  visible: boolean;
  opacity: number;
  blendMode: string;
  bounds: { x: number; y: number; width: number; height: number };
  fills: { type: string; imageHash?: string; scaleMode?: string; imageTransform?: number[][] }[];
  pluginData: Record<string, string>;
  sharedPluginData: Record<string, string>;
}

export interface FakeFigmaHooks {
  log: string[];
  posted: { type: string; [key: string]: unknown }[];
  maskExports: Uint8Array[];
  source: FakeNode;
  mask: FakeNode;
  add(type: string, name: string, box: { x: number; y: number; width: number; height: number }, props?: Record<string, unknown>): FakeNode;
  select(ids: string[]): void;
  close(): void;
  setPluginId(id: string): void;
  fromUi(message: unknown): void;
  imageBytes(hash: string): Uint8Array | undefined;
  layers(): FakeLayer[];
}

export interface FakeFigmaOptions {
  sourcePng: Uint8Array;
  encodePng: (rgba: Uint8Array, width: number, height: number) => Promise<Uint8Array>;
  pluginId?: string;
  clientStorage?: Record<string, unknown>;
  availableFonts?: { family: string; style: string }[];
}

/** `figma` is the fake global (an object graph, not typed here: the host sees it as PluginAPI). */
export function createFakeFigma(options: FakeFigmaOptions): { figma: object; hooks: FakeFigmaHooks };
