/**
 * One options type: every client form accounts for every edit option the protocol's schema declares (a control,
 * or an explicit null), and takes its ranges and defaults from shared/protocol.ts rather than from its HTML.
 * Adding an option to editOptionsSchema fails here (and fails typechecking in each client) until every form
 * decides about it.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { FORM_CONTROLS as FIGMA } from '../../../plugin-figma/src/edit-flow';
import { FORM_CONTROLS as UXP } from '../../../plugin-uxp/src/controller';
import { DEFAULT_EDIT_OPTIONS, EDIT_OPTION_BOUNDS, controlAttributes, editOptionsSchema } from '../../../shared/protocol';
import { FORM_CONTROLS as PLAYGROUND } from '../../../server/web/form';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const FORMS = [
  ['Figma panel', FIGMA, 'plugin-figma/src/ui.html'],
  ['Photoshop panel', UXP, 'plugin-uxp/index.html'],
  ['playground', PLAYGROUND, 'server/web/playground.html'],
] as const;

describe.each(FORMS)('%s', (_name, controls, htmlFile) => {
  const html = readFileSync(path.join(ROOT, htmlFile), 'utf8');

  it('lists every option of the schema, and only those', () => {
    expect(Object.keys(controls).sort()).toEqual(Object.keys(editOptionsSchema.shape).sort());
  });

  it('has an element for each control, with no range or default of its own in the HTML', () => {
    for (const [option, id] of Object.entries(controls)) {
      if (id === null) continue;
      const tag = new RegExp(`<(input|select)[^>]*\\bid="${id}"[^>]*>`).exec(html);
      expect([option, tag?.[1] ?? 'missing']).not.toEqual([option, 'missing']);
      for (const attr of ['min', 'max', 'step', 'value', 'selected']) expect([option, attr, tag![0].includes(` ${attr}=`)]).toEqual([option, attr, false]);
    }
  });
});

describe('control attributes', () => {
  it('come from EDIT_OPTION_BOUNDS and DEFAULT_EDIT_OPTIONS; an exclusive minimum starts one step up', () => {
    expect(controlAttributes('strength')).toEqual({ min: '0.05', max: '1', step: '0.05', value: String(DEFAULT_EDIT_OPTIONS.strength) });
    expect(controlAttributes('strength', 100)).toEqual({ min: '5', max: '100', step: '5', value: '100' });
    expect(controlAttributes('steps')).toEqual({ min: '1', max: String(EDIT_OPTION_BOUNDS.steps.max), step: '1', value: '20' });
    expect(controlAttributes('seed').value).toBe(''); // no default: the server picks one
  });
});
