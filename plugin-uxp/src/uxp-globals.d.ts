// Globals UXP provides that @adobe/cc-ext-uxp-types 7.3.1 does not declare (this file is only part of the
// plugin's own tsconfig; the Node-side typecheck gets them from @types/node).
declare function setTimeout(handler: () => void, timeout?: number): number;
declare function clearTimeout(id: number): void;
declare const console: {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};
