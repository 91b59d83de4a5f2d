/**
 * An image worker (image-steps.ts): runs the image side of edits, one step at a time, off the main thread.
 * Built to dist/image-worker.js.
 */
import { parentPort, type TransferListItem } from 'node:worker_threads';
import { types } from 'node:util';
import type { RgbaImage } from '../imaging/image';
import { placeEdit } from './compose';
import type { FromImageWorker, ToImageWorker } from './image-steps';
import { prepareEdit } from './prepare';

const port = parentPort;
if (!port) throw new Error('the image worker must run in a worker_thread');

port.on('message', (message: ToImageWorker) => {
  run(message).then(
    ([reply, transfer]) => port.postMessage(reply, transfer),
    (err: Error) => port.postMessage({ error: err.message } satisfies FromImageWorker),
  );
});

async function run(message: ToImageWorker): Promise<[FromImageWorker, TransferListItem[]]> {
  if (message.step === 'prepare') return [{ prepared: await prepareEdit(message.input) }, []];
  const placed = await placeEdit(message.input);
  return [{ placed }, ownBuffer(placed)];
}

/** The result's pixels move to the main thread instead of being copied, when they own their whole buffer. */
function ownBuffer(image: RgbaImage): TransferListItem[] {
  const { buffer, byteOffset, byteLength } = image.data;
  return !types.isSharedArrayBuffer(buffer) && byteOffset === 0 && byteLength === buffer.byteLength ? [buffer] : [];
}
