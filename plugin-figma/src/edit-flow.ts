/**
 * One Apply, from the UI's side: ask the main thread for the pixels, upload them, queue the edit, follow
 * the job, download the results and have the main thread place them. Every step reports to the shared
 * EditSession reducer (shared/client/session.ts) through `dispatch`. No DOM: ui.ts wires it to the shared
 * client and the bridge, tests to fakes.
 */
import {
  DEFAULT_EDIT_OPTIONS,
  editOptionsSchema,
  editRequestSchema,
  formatIssues,
  isTerminalJobEvent,
  type EditParent,
  type EditRequestInput,
  type FormControls,
  type JobEvent,
  type LOCALITIES,
} from '../../shared/protocol';
import { ClientError, isAbortError, submitEdit, type LayerloopClient, type SessionAction } from '../../shared/client';
import { MainRequestError } from './bridge';
import { pngSize } from './geometry';
import type { EditInputs, MainBridge } from './bridge';
import type { PngImage } from './messages';

/** What the panel's controls hold. */
export interface EditForm {
  instruction: string;
  /** words naming where to edit ("the circle"); '' = the selected mask shape, or the whole layer */
  maskText: string;
  locality: (typeof LOCALITIES)[number];
  /** 0 = exactly the mask .. 1 = the whole image */
  spread: number;
  strength: number;
  variations: number;
  /** null = the server picks one (and reports it) */
  seed: number | null;
  steps: number;
}

/** The protocol's defaults; no seed (the server picks one and reports it). */
export const DEFAULT_FORM: EditForm = {
  instruction: '',
  maskText: '',
  locality: DEFAULT_EDIT_OPTIONS.locality,
  spread: DEFAULT_EDIT_OPTIONS.spread,
  strength: DEFAULT_EDIT_OPTIONS.strength,
  variations: DEFAULT_EDIT_OPTIONS.variations,
  seed: null,
  steps: DEFAULT_EDIT_OPTIONS.steps,
};

/** The panel's control (ui.html element id) for each edit option; null = left to the server's default. */
export const FORM_CONTROLS = {
  steps: 'steps',
  textScale: null,
  imageScale: null,
  sampler: null,
  locality: 'locality',
  spread: 'spread',
  strength: 'strength',
  variations: 'variations',
  seed: 'seed',
  progressiveShrink: null,
  previewEvery: null,
} as const satisfies FormControls;

export const NO_INSTRUCTION = 'Type an instruction first, for example "make the sky stormy".';

/** Why the form cannot be sent, or null. */
export function formProblem(form: EditForm): string | null {
  if (form.instruction.trim() === '') return NO_INSTRUCTION;
  const options = editOptionsSchema.safeParse(optionsOf(form));
  return options.success ? null : formatIssues(options.error);
}

function optionsOf(form: EditForm): EditRequestInput['options'] {
  return {
    steps: form.steps,
    strength: form.strength,
    variations: form.variations,
    locality: form.locality,
    spread: form.spread,
    ...(form.seed === null ? {} : { seed: form.seed }),
  };
}

/**
 * The edits.create input; throws with the protocol's own message if something is out of range. Words in the
 * form (maskText) name the region instead of the mask shape: the server derives the mask from them.
 */
export function buildEditRequest(form: EditForm, documentId: string, parent: EditParent, maskSha256: string | null, references: string[] = []): EditRequestInput {
  const instruction = form.instruction.trim();
  const maskText = form.maskText.trim();
  const request: EditRequestInput = {
    documentId,
    parent,
    regions: [maskText === '' ? { instruction, maskSha256 } : { instruction, maskText }],
    options: optionsOf(form),
    ...(references.length ? { references } : {}),
  };
  const checked = editRequestSchema.safeParse(request);
  if (!checked.success) throw new ClientError('bad-request', formatIssues(checked.error));
  return request;
}

/** A history edit pinned as the parent of the next Apply. */
export interface PinnedEdit {
  editId: string;
  resultImageSha256: string;
}

export interface EditFlowDeps {
  api: LayerloopClient;
  main: Pick<MainBridge, 'prepareEdit' | 'placeResults'>;
  dispatch: (action: SessionAction) => void;
  /** scale a mask PNG to width x height (a canvas in the iframe); masks must match the image exactly */
  resizePng: (png: Uint8Array, width: number, height: number) => Promise<Uint8Array>;
}

/** The text the panel shows for a failure. */
export function failureMessage(err: unknown): string {
  if (err instanceof ClientError || err instanceof MainRequestError) return err.message;
  return `Something unexpected went wrong: ${err instanceof Error ? err.message : String(err)}. Try again; if it keeps happening, reopen the plugin.`;
}

/** One Apply. `run` once; `cancel` any time. */
export class EditRun {
  private readonly abort = new AbortController();
  private cancelWanted = false;
  private jobId: string | null = null;

  constructor(private readonly deps: EditFlowDeps) {}

  /** Stop the edit: before the job exists nothing is sent; after, the server is asked to cancel it. */
  cancel(): void {
    if (this.cancelWanted) return;
    this.cancelWanted = true;
    this.deps.dispatch({ type: 'cancel-requested' });
    if (this.jobId === null) {
      this.abort.abort();
      return;
    }
    this.deps.api.cancelJob(this.jobId).catch((err: unknown) => {
      this.abort.abort();
      this.deps.dispatch({ type: 'fail', message: `Could not cancel the edit: ${failureMessage(err)}` });
    });
  }

  private async upload(png: Uint8Array): Promise<string> {
    return (await this.deps.api.putImage(png, { contentType: 'image/png' }, this.abort.signal)).sha256;
  }

  /** The mask at exactly the image's size (Figma may round the two exports differently). */
  private async maskAt(mask: PngImage, size: { width: number; height: number } | null): Promise<Uint8Array> {
    if (!size || (mask.width === size.width && mask.height === size.height)) return mask.png;
    return this.deps.resizePng(mask.png, size.width, size.height);
  }

  /** The parent of the next edit: the layer's pixels uploaded, or the history edit it continues from. */
  private async parentOf(inputs: EditInputs): Promise<EditParent> {
    if (inputs.parent.kind === 'source') {
      if (!inputs.image) throw new MainRequestError('Figma sent no pixels for the layer. Select it again and Apply.');
      return { kind: 'source', imageSha256: await this.upload(inputs.image.png) };
    }
    const parent: EditParent = { kind: 'edit', editId: inputs.parent.editId };
    // the layer's current pixels: the server compares them with the edit's result (painted on?)
    if (inputs.image) parent.pixelsSha256 = await this.upload(inputs.image.png);
    return parent;
  }

  /**
   * "What will change": the mask the words give on the layer (masks.preview), as PNG bytes of the layer's size.
   * Nothing is queued; the server's message (words it does not know, a phrase naming nothing here) is thrown.
   */
  async previewMask(maskText: string, documentId: string, pinned: PinnedEdit | null): Promise<{ png: Uint8Array; coverage: number }> {
    const inputs = await this.deps.main.prepareEdit(pinned ? { editId: pinned.editId } : null);
    // the same parent as an Apply: the server previews on the pixels the edit would start from
    const parent = await this.parentOf(inputs);
    const preview = await this.deps.api.previewMask({ documentId, parent, maskText: maskText.trim() }, this.abort.signal);
    return { png: await this.deps.api.getBlob(preview.maskSha256, this.abort.signal), coverage: preview.coverage };
  }

  /** `reference`: the reference image's PNG (the server's model reads them), uploaded with the edit */
  async run(form: EditForm, documentId: string, pinned: PinnedEdit | null, reference: PngImage | null = null): Promise<void> {
    const { api, main, dispatch } = this.deps;
    const signal = this.abort.signal;
    dispatch({ type: 'start' });
    try {
      const inputs = await main.prepareEdit(pinned ? { editId: pinned.editId } : null);
      if (this.cancelWanted) return;
      dispatch({ type: 'prepared' });

      const parent = await this.parentOf(inputs);
      let maskSha256: string | null = null;
      if (inputs.mask && form.maskText.trim() === '') {
        let size = inputs.image ? { width: inputs.image.width, height: inputs.image.height } : null;
        if (!size && pinned) size = pngSize(await api.getBlob(pinned.resultImageSha256, signal));
        maskSha256 = await this.upload(await this.maskAt(inputs.mask, size));
      }

      const references = reference ? [await this.upload(reference.png)] : [];
      const request = buildEditRequest(form, documentId, parent, maskSha256, references);
      // not aborted once sent: a job the server accepted is cancelled by id, never orphaned
      const { created, warning } = await submitEdit(api, request);
      if (warning) dispatch({ type: 'warning', message: warning });
      this.jobId = created.jobId;
      if (this.cancelWanted) {
        await api.cancelJob(created.jobId).catch(() => undefined);
        return;
      }
      dispatch({ type: 'job-created', jobId: created.jobId, seed: created.seed, position: created.position });

      let terminal: JobEvent | null = null;
      for await (const event of api.follow(created.jobId, signal)) {
        dispatch({ type: 'job-event', event });
        if (isTerminalJobEvent(event)) {
          terminal = event;
          break;
        }
      }
      if (!terminal) throw new ClientError('server', 'The server stopped reporting on the edit. Its result, if any, will show up in History.');
      if (terminal.type !== 'succeeded' || this.cancelWanted) return;

      const { resultSha256s } = terminal;
      const nodeIds = await main.placeResults({
        target: { kind: 'node', nodeId: inputs.sourceNodeId },
        instruction: form.instruction,
        documentId,
        editIds: terminal.editIds,
        png: (i) => api.getBlob(resultSha256s[i], signal),
      });
      dispatch({ type: 'placed', layers: nodeIds.length });
    } catch (err) {
      if (this.cancelWanted && isAbortError(err)) return; // the reducer already shows "cancelled"
      dispatch({ type: 'fail', message: failureMessage(err) });
    }
  }
}
