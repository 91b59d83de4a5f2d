/**
 * Giving memory back after a burst of big uploads.
 *
 * Upload bodies and decoded images are ArrayBuffers outside V8's heap. V8 frees them only when it collects
 * garbage, and it collects when JavaScript allocates: a server that goes idle after a burst allocates nothing, so
 * hundreds of MiB of dead 64 MiB buffers would stay resident for as long as it stays idle. When a burst ends, the
 * server asks for one full collection a moment later. Node offers gc() only with --expose-gc; setting that flag at
 * run time and reading gc from a fresh context is how jest's leak detector gets it too.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

let gc: (() => void) | null = null;

function collector(): () => void {
  if (!gc) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  return gc;
}

/** Runs one full collection `delayMs` after the last call (later calls push it back). */
export function debouncedCollection(delayMs: number): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  return () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      collector()();
    }, delayMs);
    timer.unref();
  };
}
