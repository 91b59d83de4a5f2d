/**
 * The UI's side of the main-thread messages: sends typed requests, pairs each reply with its request by
 * requestId, and validates everything that arrives (mainToUiSchema). No DOM: ui.ts passes in how to post
 * (parent.postMessage({pluginMessage}, '*')) and feeds `receive` from window 'message' events.
 */
import {
  mainToUiSchema,
  parseMessage,
  type MainToUi,
  type MainToUiOf,
  type PlacementTarget,
  type UiToMain,
} from './messages';

/** A request the main thread answered with request-failed: the message is written for the user. */
export class MainRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MainRequestError';
  }
}

export type EditInputs = Omit<MainToUiOf<'edit-inputs'>, 'type' | 'requestId'>;

/** A layer's pixels kept as the reference image of the next Apply. */
export type ReferenceImage = Omit<MainToUiOf<'reference-captured'>, 'type' | 'requestId'>;

export interface PlaceResultsRequest {
  target: PlacementTarget;
  instruction: string;
  documentId: string;
  /** one per variation, first on top */
  editIds: string[];
  /** result `index`'s PNG, fetched only when it is its turn (one image in memory at a time) */
  png: (index: number) => Promise<Uint8Array>;
}

/** What the UI logic asks of the main thread. */
export interface MainBridge {
  send(message: UiToMain): void;
  prepareEdit(continueFrom: { editId: string } | null): Promise<EditInputs>;
  captureReference(): Promise<ReferenceImage>;
  placeResults(request: PlaceResultsRequest): Promise<string[]>;
}

type Reply = MainToUiOf<'edit-inputs'> | MainToUiOf<'reference-captured'> | MainToUiOf<'placed'> | MainToUiOf<'request-failed'>;

export class Bridge implements MainBridge {
  private nextId = 0;
  private readonly pending = new Map<string, (reply: Reply) => void>();

  /**
   * @param post sends one message to the main thread
   * @param onMessage gets every valid message that is not a reply (init, selection, error)
   * @param onInvalid gets the reason a message was dropped
   */
  constructor(
    private readonly post: (message: UiToMain) => void,
    private readonly onMessage: (message: Exclude<MainToUi, Reply>) => void,
    private readonly onInvalid: (reason: string) => void = () => {},
  ) {}

  /** Feed a raw `pluginMessage` from the main thread. */
  receive(raw: unknown): void {
    const parsed = parseMessage(mainToUiSchema, raw, 'main-thread');
    if (!parsed.ok) {
      this.onInvalid(parsed.error);
      return;
    }
    const message = parsed.message;
    if (message.type === 'edit-inputs' || message.type === 'reference-captured' || message.type === 'placed' || message.type === 'request-failed') {
      const resolve = this.pending.get(message.requestId);
      if (!resolve) return this.onInvalid(`ignored a reply to an unknown request ${message.requestId}`);
      this.pending.delete(message.requestId);
      resolve(message);
      return;
    }
    this.onMessage(message);
  }

  send(message: UiToMain): void {
    this.post(message);
  }

  private request(make: (requestId: string) => UiToMain): Promise<Reply> {
    const requestId = `r${++this.nextId}`;
    return new Promise<Reply>((resolve) => {
      this.pending.set(requestId, resolve);
      this.post(make(requestId));
    });
  }

  async prepareEdit(continueFrom: { editId: string } | null): Promise<EditInputs> {
    const reply = await this.request((requestId) => ({ type: 'prepare-edit', requestId, continueFrom }));
    if (reply.type === 'request-failed') throw new MainRequestError(reply.message);
    if (reply.type !== 'edit-inputs') throw new MainRequestError(`the main thread answered ${reply.type} to prepare-edit`);
    const { type: _type, requestId: _id, ...inputs } = reply;
    return inputs;
  }

  async captureReference(): Promise<ReferenceImage> {
    const reply = await this.request((requestId) => ({ type: 'capture-reference', requestId }));
    if (reply.type === 'request-failed') throw new MainRequestError(reply.message);
    if (reply.type !== 'reference-captured') throw new MainRequestError(`the main thread answered ${reply.type} to capture-reference`);
    const { type: _type, requestId: _id, ...reference } = reply;
    return reference;
  }

  /** One place-result message per variation; if a PNG cannot be had, the layers placed so far are removed. */
  async placeResults(request: PlaceResultsRequest): Promise<string[]> {
    const { editIds, png, ...common } = request;
    const placementId = `p${++this.nextId}`;
    let nodeIds: string[] = [];
    for (let index = 0; index < editIds.length; index++) {
      let bytes: Uint8Array;
      try {
        bytes = await png(index);
      } catch (err) {
        if (index > 0) this.post({ type: 'place-abandon', placementId });
        throw err;
      }
      const count = editIds.length;
      const reply = await this.request((requestId) => ({ type: 'place-result', requestId, placementId, index, count, editId: editIds[index], png: bytes, ...common }));
      if (reply.type === 'request-failed') throw new MainRequestError(reply.message);
      if (reply.type !== 'placed') throw new MainRequestError(`the main thread answered ${reply.type} to place-result`);
      nodeIds = reply.nodeIds;
    }
    return nodeIds;
  }
}
