import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  MAX_MASK_TEXT_LENGTH,
  DEFAULT_EDIT_OPTIONS,
  EDIT_OPTION_BOUNDS,
  MAX_IMAGE_PIXELS,
  MAX_IMAGE_SIDE,
  MAX_INSTRUCTION_LENGTH,
  MAX_QUEUE_LENGTH,
  MAX_REGIONS,
  MAX_UPLOAD_BYTES,
  cancelJobInputSchema,
  editOptionsSchema,
  editRequestSchema,
  eventId,
  formatIssues,
  imageSizeProblem,
  isTerminalJobEvent,
  jobEventSchema,
  jobSnapshotSchema,
  minStrengthFor,
  openDocumentSchema,
  seqFromEventId,
  sha256Schema,
  watchJobInputSchema,
  type EditOptionsInput,
  type EditOptionsParsed,
  type EditRequest,
  type EditRequestInput,
  type JobEvent,
  type JobState,
} from '../../../shared';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

function validInput(): EditRequestInput {
  return {
    documentId: randomUUID(),
    parent: { kind: 'source', imageSha256: SHA_A },
    regions: [{ instruction: 'make the sky stormy', maskSha256: SHA_B }],
    options: {},
  };
}

/** The message of the one issue a bad input produces, with its location (formatIssues). */
function problem(input: unknown): string {
  const r = editRequestSchema.safeParse(input);
  if (r.success) throw new Error('expected the request to be rejected');
  return formatIssues(r.error);
}

function withOptions(options: Record<string, unknown>): unknown {
  return { ...validInput(), options };
}

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(_: T): void {}

describe('limits', () => {
  test('are exported once, with the agreed values', () => {
    expect(MAX_INSTRUCTION_LENGTH).toBe(500);
    expect(MAX_REGIONS).toBe(4);
    expect(MAX_IMAGE_PIXELS).toBe(4096 * 4096);
    expect(MAX_IMAGE_SIDE).toBe(8192);
    expect(MAX_UPLOAD_BYTES).toBe(64 * 1024 * 1024);
    expect(MAX_QUEUE_LENGTH).toBe(64);
  });

  test('imageSizeProblem says what is wrong with a size, null when fine', () => {
    expect(imageSizeProblem(4096, 4096)).toBeNull();
    expect(imageSizeProblem(8192, 1024)).toBeNull();
    expect(imageSizeProblem(8193, 100)).toMatch(/at most 8192 pixels/);
    expect(imageSizeProblem(5000, 5000)).toMatch(/at most 16777216 pixels/);
    expect(imageSizeProblem(4000, 400)).toMatch(/8 times the short side/);
    expect(imageSizeProblem(0, 10)).toMatch(/at least 1x1/);
    expect(imageSizeProblem(1.5, 10)).toMatch(/integer/);
  });

  test('shared/ imports nothing but zod (it is bundled into the plugins)', () => {
    for (const file of ['protocol.ts', 'index.ts']) {
      const source = readFileSync(path.join(__dirname, '../../../shared', file), 'utf8');
      const imports = [...source.matchAll(/(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/g)].map((m) => m[1]);
      for (const spec of imports) expect(['zod', './protocol']).toContain(spec);
    }
  });
});

describe('editOptionsSchema', () => {
  test('fills the defaults (DEFAULT_EDIT_OPTIONS); seed, sampler and text scale stay open for the server and the model', () => {
    const o = editOptionsSchema.parse({});
    expect(o).toEqual({
      steps: 20,
      imageScale: 1.5,
      locality: 'both',
      spread: 0,
      strength: 1,
      variations: 1,
      progressiveShrink: true,
      previewEvery: 5,
    });
    expect(o.seed).toBeUndefined();
    expect(o.sampler).toBeUndefined();
    expect(o.textScale).toBeUndefined(); // the model family's default (ModelInfo.defaultTextScale)
    expect(DEFAULT_EDIT_OPTIONS).toEqual(o);
  });

  test('checks every numeric option against EDIT_OPTION_BOUNDS (the forms build their controls from it)', () => {
    for (const [key, b] of Object.entries(EDIT_OPTION_BOUNDS)) {
      const bounds: { min: number; max: number; integer?: boolean; minExclusive?: boolean } = b;
      expect(editOptionsSchema.safeParse({ [key]: bounds.max }).success).toBe(true);
      expect(editOptionsSchema.safeParse({ [key]: bounds.max + 1 }).success).toBe(false);
      expect(editOptionsSchema.safeParse({ [key]: bounds.min }).success).toBe(!bounds.minExclusive);
      expect(editOptionsSchema.safeParse({ [key]: bounds.min - 1 }).success).toBe(false);
      if (bounds.integer) expect(editOptionsSchema.safeParse({ [key]: bounds.min + 0.5 }).success).toBe(false);
    }
  });

  test('keeps valid values, including the range ends', () => {
    const o = editOptionsSchema.parse({ steps: 100, textScale: 0, imageScale: 10, strength: 0.01, spread: 1, variations: 8, seed: 2 ** 31 - 1, previewEvery: 0, sampler: 'ddim', locality: 'blend', progressiveShrink: false });
    expect(o).toMatchObject({ steps: 100, strength: 0.01, seed: 2147483647, sampler: 'ddim', progressiveShrink: false });
  });

  test('a strength that runs no denoising step at its steps is refused, naming the smallest that does', () => {
    const refused = editOptionsSchema.safeParse({ steps: 20, strength: 0.049 });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues).toEqual([
      expect.objectContaining({ path: ['strength'], message: 'strength 0.049 runs no denoising step at 20 steps: use a strength of at least 0.05 (1/steps), or more steps' }),
    ]);
    expect(editOptionsSchema.safeParse({ steps: 20, strength: 0.05 }).success).toBe(true);
    expect(editOptionsSchema.safeParse({ steps: 3, strength: minStrengthFor(3) }).success).toBe(true); // 0.3334: the value named is enough
    expect(minStrengthFor(3)).toBe(0.3334);
    expect(editOptionsSchema.safeParse({ steps: 1, strength: 0.999 }).success).toBe(false);
  });

  test.each<[string, Record<string, unknown>, string]>([
    ['NaN', { steps: NaN }, 'options.steps must be a finite number: an integer between 1 and 100, got NaN'],
    ['Infinity', { textScale: Infinity }, 'options.textScale must be a finite number: a number between 0 and 30, got Infinity'],
    ['-Infinity', { spread: -Infinity }, 'options.spread must be a finite number: a number between 0 and 1, got -Infinity'],
    ['a fraction', { steps: 2.5 }, 'options.steps must be an integer between 1 and 100, got 2.5'],
    ['a negative fraction', { steps: -0.5 }, 'options.steps must be an integer between 1 and 100, got -0.5'],
    ['zero steps', { steps: 0 }, 'options.steps must be an integer between 1 and 100, got 0'],
    ['too many steps', { steps: 101 }, 'options.steps must be an integer between 1 and 100, got 101'],
    ['a string number', { steps: '20' }, 'options.steps must be an integer between 1 and 100, got "20"'],
    ['negative text scale', { textScale: -1 }, 'options.textScale must be a number between 0 and 30, got -1'],
    ['image scale too high', { imageScale: 11 }, 'options.imageScale must be a number between 0 and 10, got 11'],
    ['zero strength', { strength: 0 }, 'options.strength must be a number greater than 0 and at most 1, got 0'],
    ['strength above 1', { strength: 1.1 }, 'options.strength must be a number greater than 0 and at most 1, got 1.1'],
    ['negative spread', { spread: -0.1 }, 'options.spread must be a number between 0 and 1, got -0.1'],
    ['too many variations', { variations: 9 }, 'options.variations must be an integer between 1 and 8, got 9'],
    ['negative seed', { seed: -1 }, 'options.seed must be an integer between 0 and 2147483647, got -1'],
    ['seed too large', { seed: 2 ** 31 }, 'options.seed must be an integer between 0 and 2147483647, got 2147483648'],
    ['preview too sparse', { previewEvery: 51 }, 'options.previewEvery must be an integer between 0 and 50, got 51'],
    ['unknown sampler', { sampler: 'dpm' }, 'options.sampler must be one of euler_ancestral, euler, ddim, got "dpm"'],
    ['unknown locality', { locality: 'global' }, 'options.locality must be one of guidance, blend, both, got "global"'],
    ['non-boolean shrink', { progressiveShrink: 'yes' }, 'options.progressiveShrink must be true or false, got "yes"'],
    ['a misspelt option', { step: 20 }, 'options: Unrecognized key: "step"'],
  ])('rejects %s with a message that says what to send', (_name, options, message) => {
    expect(problem(withOptions(options))).toBe(message);
  });
});

describe('editRequestSchema', () => {
  test('applies defaults (options may be left out) and trims instructions', () => {
    const { options: _o, ...rest } = validInput();
    const r = editRequestSchema.parse({ ...rest, regions: [{ instruction: '  turn the mug red \n', maskSha256: null }] });
    expect(r.regions[0]).toEqual({ instruction: 'turn the mug red', maskSha256: null });
    expect(r.options.steps).toBe(20);
  });

  test('accepts both parents; pixelsSha256 is optional', () => {
    const editId = randomUUID();
    const a = editRequestSchema.parse({ ...validInput(), parent: { kind: 'edit', editId } });
    expect(a.parent).toEqual({ kind: 'edit', editId });
    const b = editRequestSchema.parse({ ...validInput(), parent: { kind: 'edit', editId, pixelsSha256: SHA_A } });
    expect(b.parent).toEqual({ kind: 'edit', editId, pixelsSha256: SHA_A });
  });

  test('an empty instruction is allowed (keep the image in that region)', () => {
    expect(editRequestSchema.parse({ ...validInput(), regions: [{ instruction: '   ', maskSha256: null }] }).regions[0].instruction).toBe('');
  });

  test('an instruction at the limit passes (after trimming), one character more does not', () => {
    const ok = 'x'.repeat(MAX_INSTRUCTION_LENGTH);
    expect(editRequestSchema.parse({ ...validInput(), regions: [{ instruction: `  ${ok}  `, maskSha256: null }] }).regions[0].instruction).toBe(ok);
    expect(problem({ ...validInput(), regions: [{ instruction: `${ok}x`, maskSha256: null }] })).toBe(
      'regions[0].instruction must be at most 500 characters, got 501: shorten it',
    );
  });

  test('an instruction with a NUL character is refused (no store can keep it as text)', () => {
    expect(problem({ ...validInput(), regions: [{ instruction: 'make it\u0000 red', maskSha256: null }] })).toBe(
      'regions[0].instruction must not contain NUL characters (U+0000)',
    );
  });

  test('rejects bad ids and digests, naming the field', () => {
    expect(problem({ ...validInput(), documentId: 'doc-1' })).toBe('documentId must be a UUID (from documents.open), got "doc-1"');
    expect(problem({ ...validInput(), parent: { kind: 'edit', editId: '123' } })).toBe('parent.editId must be a UUID (the id of a stored edit), got "123"');
    expect(problem({ ...validInput(), parent: { kind: 'source', imageSha256: SHA_A.toUpperCase() } })).toMatch(
      /^parent\.imageSha256: expected a SHA-256 digest \(64 lowercase hex characters/,
    );
    expect(problem({ ...validInput(), regions: [{ instruction: 'x', maskSha256: 'abc' }] })).toBe(
      'regions[0].maskSha256: expected a SHA-256 digest (64 lowercase hex characters, as returned by PUT /v1/blobs), got "abc"',
    );
    expect(problem({ ...validInput(), parent: { kind: 'layer' } })).toBe(
      "parent.kind must be 'edit' (continue from a stored edit) or 'source' (an uploaded image), got \"layer\"",
    );
  });

  test('a region names where to edit with maskSha256 or with maskText (trimmed), exactly one of them', () => {
    const r = editRequestSchema.parse({ ...validInput(), regions: [{ instruction: 'make it blue', maskText: '  the circle ' }] });
    expect(r.regions[0]).toEqual({ instruction: 'make it blue', maskText: 'the circle' });
    expect(problem({ ...validInput(), regions: [{ instruction: 'x', maskText: 'the circle', maskSha256: SHA_B }] })).toBe(
      'regions[0]: send either maskSha256 or maskText, not both',
    );
    expect(problem({ ...validInput(), regions: [{ instruction: 'x', maskText: 'the circle', maskSha256: null }] })).toBe(
      'regions[0]: send either maskSha256 or maskText, not both',
    );
    expect(problem({ ...validInput(), regions: [{ instruction: 'x' }] })).toBe(
      'regions[0]: a region needs maskSha256 (a mask blob, or null for the whole image) or maskText (words naming where to edit)',
    );
    expect(problem({ ...validInput(), regions: [{ instruction: 'x', maskText: ' \u200b ' }] })).toBe(
      'regions[0].maskText is empty: name what to edit, e.g. "the circle", or send a mask instead',
    );
    expect(problem({ ...validInput(), regions: [{ instruction: 'x', maskText: 'a'.repeat(MAX_MASK_TEXT_LENGTH + 1) }] })).toBe(
      `regions[0].maskText must be at most ${MAX_MASK_TEXT_LENGTH} characters, got ${MAX_MASK_TEXT_LENGTH + 1}: name the region in a few words`,
    );
    expect(problem({ ...validInput(), regions: [{ instruction: 'x', maskText: 42 }] })).toBe('regions[0].maskText must be a string, got 42');
  });

  test('rejects zero regions and more than MAX_REGIONS', () => {
    expect(problem({ ...validInput(), regions: [] })).toBe('regions must hold at least one {instruction, maskSha256 or maskText}');
    const five = Array.from({ length: MAX_REGIONS + 1 }, () => ({ instruction: 'x', maskSha256: null }));
    expect(problem({ ...validInput(), regions: five })).toBe('regions: at most 4 regions per edit, got 5: merge or drop some');
  });

  test('reports every bad field at once', () => {
    const lines = problem({ ...validInput(), documentId: 'x', options: { steps: -1, strength: NaN } }).split('\n');
    expect(lines).toHaveLength(3);
  });

  test('sha256Schema accepts exactly 64 lowercase hex characters', () => {
    expect(sha256Schema.safeParse('0123456789abcdef'.repeat(4)).success).toBe(true);
    expect(sha256Schema.safeParse('g'.repeat(64)).success).toBe(false);
    expect(sha256Schema.safeParse('a'.repeat(63)).success).toBe(false);
    expect(sha256Schema.safeParse(42).success).toBe(false);
  });

  test('types are inferred: input optional, output filled', () => {
    assertType<Equals<EditRequest['options']['steps'], number>>(true);
    assertType<Equals<EditOptionsInput['steps'], number | undefined>>(true);
    assertType<Equals<EditOptionsParsed['seed'], number | undefined>>(true);
    assertType<Equals<EditRequest['regions'][number]['maskSha256'], string | null | undefined>>(true);
    assertType<Equals<EditRequest['regions'][number]['maskText'], string | undefined>>(true);
    const parsed: EditRequest = editRequestSchema.parse(validInput());
    expect(parsed.options.steps).toBe(20);
    if (parsed.parent.kind === 'edit') assertType<Equals<typeof parsed.parent.editId, string>>(true);
    else assertType<Equals<typeof parsed.parent.imageSha256, string>>(true);
  });
});

describe('other inputs', () => {
  test('openDocumentSchema', () => {
    expect(openDocumentSchema.parse({ host: 'figma', hostDocumentKey: 'file:page' })).toEqual({ host: 'figma', hostDocumentKey: 'file:page', create: true });
    expect(openDocumentSchema.parse({ host: 'figma', hostDocumentKey: 'file:page', create: false }).create).toBe(false);
    expect(formatIssues(openDocumentSchema.safeParse({ host: 'figma', hostDocumentKey: 'k', create: 'no' }).error!)).toBe('create must be true or false, got "no"');
    const bad = openDocumentSchema.safeParse({ host: 'krita', hostDocumentKey: '' });
    expect(bad.success).toBe(false);
    expect(formatIssues(bad.error!)).toBe('host must be one of figma, photoshop, web, cli, got "krita"\nhostDocumentKey must not be empty');
    expect(openDocumentSchema.safeParse({ host: 'web', hostDocumentKey: 'k'.repeat(201) }).success).toBe(false);
    expect(formatIssues(openDocumentSchema.safeParse({ host: 'web', hostDocumentKey: 'a\u0000b' }).error!)).toBe('hostDocumentKey must not contain NUL characters (U+0000)');
  });

  test('job id inputs and SSE resume ids', () => {
    expect(formatIssues(cancelJobInputSchema.safeParse({ jobId: 'nope' }).error!)).toBe('jobId must be a UUID (from edits.create), got "nope"');
    const jobId = randomUUID();
    expect(watchJobInputSchema.parse({ jobId, lastEventId: '12' })).toEqual({ jobId, lastEventId: '12' });
    expect(watchJobInputSchema.safeParse({ jobId, lastEventId: 'x' }).success).toBe(false);
    expect(seqFromEventId('12')).toBe(12);
    expect(seqFromEventId(null)).toBe(0);
    expect(seqFromEventId(undefined)).toBe(0);
  });
});

describe('JobEvent', () => {
  test('is a discriminated union on type, each with jobId and seq', () => {
    const jobId = randomUUID();
    const events: JobEvent[] = [
      { type: 'queued', jobId, seq: 1, position: 2 },
      { type: 'started', jobId, seq: 2 },
      { type: 'progress', jobId, seq: 3, step: 1, totalSteps: 20, variation: 0 },
      { type: 'preview', jobId, seq: 4, step: 5, totalSteps: 20, variation: 0, dataUrl: 'data:image/png;base64,iVBORw0KGgo=' },
      { type: 'succeeded', jobId, seq: 5, editIds: [randomUUID()], resultSha256s: [SHA_A] },
    ];
    for (const e of events) expect(jobEventSchema.parse(e)).toEqual(e);
    expect(events.map(eventId)).toEqual(['1', '2', '3', '4', '5']);
    expect(events.map(isTerminalJobEvent)).toEqual([false, false, false, false, true]);
    expect(isTerminalJobEvent({ type: 'failed', jobId, seq: 6, message: 'x' })).toBe(true);
    expect(isTerminalJobEvent({ type: 'cancelled', jobId, seq: 6 })).toBe(true);
    const e = events[3];
    if (e.type === 'preview') assertType<Equals<typeof e.dataUrl, string>>(true);
    expect(jobEventSchema.safeParse({ type: 'preview', jobId, seq: 1, step: 1, totalSteps: 1, variation: 0, dataUrl: 'https://x' }).success).toBe(false);
    expect(jobEventSchema.safeParse({ type: 'finished', jobId, seq: 1 }).success).toBe(false);
    expect(jobEventSchema.safeParse({ type: 'started', jobId, seq: 0 }).success).toBe(false);
  });

  test('JobSnapshot validates a polled state', () => {
    const state: JobState = 'running';
    const snapshot = {
      jobId: randomUUID(),
      documentId: randomUUID(),
      state,
      position: null,
      cancelRequested: false,
      progress: { step: 3, totalSteps: 20, variation: 0 },
      previewStep: null,
      previewDataUrl: null,
      result: null,
      error: null,
      lastSeq: 5,
      enqueuedAt: 1,
      startedAt: 2,
      finishedAt: null,
    };
    expect(jobSnapshotSchema.parse(snapshot)).toEqual(snapshot);
    expect(jobSnapshotSchema.safeParse({ ...snapshot, state: 'done' }).success).toBe(false);
  });
});
