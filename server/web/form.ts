/** The playground's control (playground.html element id) for each edit option; null = none on the page. */
import type { FormControls } from '../../shared/protocol';

export const FORM_CONTROLS = {
  steps: 'opt-steps',
  textScale: null,
  imageScale: null,
  sampler: null,
  locality: 'opt-locality',
  spread: 'opt-spread',
  strength: 'opt-strength',
  variations: 'opt-variations',
  seed: 'opt-seed',
  progressiveShrink: null,
  // computed from the steps: about six previews per edit
  previewEvery: null,
} as const satisfies FormControls;
