/**
 * Prompt text -> text-encoder input ids: `[maxLength]` int32 = BOS, content (cut to maxLength-2), EOS, pad.
 *
 * Two on-disk formats, one pipeline (engine.md section 3):
 *   normalize(text) -> pre-tokenize into words -> word model (word -> ids) -> frame (BOS/EOS, truncate, pad).
 * - CLIP BPE folder (`vocab.json` + `merges.txt`, what SD-1.x ships): `clipBpeTokenizer`, which matches
 *   transformers' slow `CLIPTokenizer` (ftfy's NFC, whitespace collapse, lowercase, CLIP pre-split regex,
 *   GPT-2 byte->unicode map, BPE with `</w>`).
 * - Hugging Face `tokenizer.json` (WordLevel or BPE model): `tokenizerFromJson`.
 * Truncation always keeps EOS (index <= maxLength-1), as the Python pipeline does; padding fills with `pad`.
 * Not done: HF's extraction of added tokens typed inside the prompt (the tiny model's Python twin does not do it
 * either); the CLIP path maps a typed `<|startoftext|>`/`<|endoftext|>` word to its id, as the slow tokenizer does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

export interface Tokenizer {
  readonly maxLength: number;
  /** maxLength (77) ids: BOS, content (truncated to maxLength-2), EOS, then pad. */
  encode(text: string): Int32Array;
}

const CLIP_BOS = '<|startoftext|>';
const CLIP_EOS = '<|endoftext|>';
const DEFAULT_MAX_LENGTH = 77;
/** transformers/SD read `merges.txt` lines [1 : 49152-256-2+1]: the header, then at most this many merges. */
const CLIP_MERGE_LIMIT = 49152 - 256 - 2;
/** transformers writes model_max_length = 1e30 for "no limit"; anything this large is treated as unset. */
const UNSET_MODEL_MAX_LENGTH = 1e9;
/** Per-tokenizer BPE word cache bound; cleared when full so a long-running server cannot grow it forever. */
const WORD_CACHE_LIMIT = 10_000;
/** CLIP pre-split (transformers `CLIPTokenizer.pat`, IGNORECASE). */
const CLIP_SPLIT = String.raw`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`;
/** GPT-2 pre-split used by the ByteLevel pre-tokenizer when `use_regex` is on. */
const GPT2_SPLIT = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
/** Oniguruma's Unicode `\w` (what HF tokenizers' `Whitespace` pre-tokenizer uses): Letter|Mark|Nd|Pc. */
const ONIG_WORD = String.raw`\p{L}\p{M}\p{Nd}\p{Pc}`;
/** HF `Whitespace` pre-tokenizer: `\w+|[^\w\s]+`, with Oniguruma's Unicode classes. */
const HF_WHITESPACE_SPLIT = `[${ONIG_WORD}]+|[^${ONIG_WORD}\\p{White_Space}]+`;

// ---------------------------------------------------------------------------------------------
// Pipeline stages and framing

type Normalize = (text: string) => string;
/** Maps the current pieces of text to finer pieces (HF pre-tokenizers compose this way). */
type PreTokenize = (pieces: string[]) => string[];
type WordModel = (word: string) => readonly number[];

interface Frame {
  maxLength: number;
  bos: number;
  eos: number;
  pad: number;
}

function makeTokenizer(normalize: Normalize, preTokenize: PreTokenize, model: WordModel, frame: Frame): Tokenizer {
  const contentLimit = frame.maxLength - 2;
  return {
    maxLength: frame.maxLength,
    encode(text: string): Int32Array {
      const ids: number[] = [];
      for (const word of preTokenize([normalize(text)])) {
        if (ids.length >= contentLimit) break;
        for (const id of model(word)) ids.push(id);
      }
      return frameIds(ids, frame);
    },
  };
}

/** `[BOS, content[:maxLength-2], EOS, pad...]`, always exactly maxLength long. */
function frameIds(content: readonly number[], frame: Frame): Int32Array {
  const out = new Int32Array(frame.maxLength).fill(frame.pad);
  const n = Math.min(content.length, frame.maxLength - 2);
  out[0] = frame.bos;
  for (let i = 0; i < n; i++) out[i + 1] = content[i];
  out[n + 1] = frame.eos;
  return out;
}

function checkMaxLength(maxLength: number, where: string): number {
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new Error(`${where}: max length must be an integer >= 2 (room for BOS and EOS), got ${maxLength}`);
  }
  return maxLength;
}

// ---------------------------------------------------------------------------------------------
// Byte level (GPT-2 byte -> printable unicode) and BPE

/** Index = byte. Printable Latin-1 bytes map to themselves; the other 68 bytes to U+0100.. in byte order. */
function byteToUnicodeTable(): readonly string[] {
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    table.push(String.fromCharCode(printable ? b : next++));
  }
  return Object.freeze(table);
}

const BYTE_TO_UNICODE = byteToUnicodeTable();

function byteLevelEncode(word: string): string {
  let out = '';
  for (const byte of Buffer.from(word, 'utf8')) out += BYTE_TO_UNICODE[byte];
  return out;
}

/** rank of merge (a, b) = ranks.get(a)?.get(b); lower merges first. */
type MergeRanks = Map<string, Map<string, number>>;

function mergeRanks(merges: ReadonlyArray<readonly [string, string]>): MergeRanks {
  const ranks: MergeRanks = new Map();
  merges.forEach(([a, b], rank) => {
    let row = ranks.get(a);
    if (!row) ranks.set(a, (row = new Map()));
    if (!row.has(b)) row.set(b, rank);
  });
  return ranks;
}

/**
 * Classic BPE (CLIP/GPT-2 `bpe()`): repeatedly take the adjacent pair with the lowest merge rank and
 * merge every non-overlapping occurrence of it, left to right, until no adjacent pair has a rank.
 */
function applyMerges(symbols: string[], ranks: MergeRanks): string[] {
  let word = symbols;
  while (word.length > 1) {
    let best = Infinity;
    let first = '';
    let second = '';
    for (let i = 0; i < word.length - 1; i++) {
      const rank = ranks.get(word[i])?.get(word[i + 1]);
      if (rank !== undefined && rank < best) {
        best = rank;
        first = word[i];
        second = word[i + 1];
      }
    }
    if (best === Infinity) break;
    const merged: string[] = [];
    for (let i = 0; i < word.length; ) {
      if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
        merged.push(first + second);
        i += 2;
      } else {
        merged.push(word[i]);
        i += 1;
      }
    }
    word = merged;
  }
  return word;
}

interface BpeOptions {
  vocab: ReadonlyMap<string, number>;
  ranks: MergeRanks;
  /** Appended to a word's last symbol before merging (`</w>` for CLIP, '' for GPT-2). */
  endOfWordSuffix: string;
  /** Id for symbols missing from the vocab; undefined drops them (HF BPE without unk_token). */
  unkId: number | undefined;
  /** Collapse consecutive unknown symbols into one unk id (HF `fuse_unk`). */
  fuseUnk: boolean;
}

function bpeIds(word: string, opts: BpeOptions): number[] {
  const symbols = Array.from(word);
  if (symbols.length === 0) return [];
  symbols[symbols.length - 1] += opts.endOfWordSuffix;
  const ids: number[] = [];
  let previousWasUnk = false;
  for (const token of applyMerges(symbols, opts.ranks)) {
    const id = opts.vocab.get(token);
    if (id !== undefined) {
      ids.push(id);
      previousWasUnk = false;
    } else if (opts.unkId !== undefined) {
      if (!(opts.fuseUnk && previousWasUnk)) ids.push(opts.unkId);
      previousWasUnk = true;
    }
  }
  return ids;
}

/** BPE word model with a per-instance word cache (callers must not mutate the returned arrays). */
function bpeModel(opts: BpeOptions): WordModel {
  const cache = new Map<string, readonly number[]>();
  return (word) => {
    const hit = cache.get(word);
    if (hit) return hit;
    const ids = bpeIds(word, opts);
    if (cache.size >= WORD_CACHE_LIMIT) cache.clear();
    cache.set(word, ids);
    return ids;
  };
}

function wordLevelModel(vocab: ReadonlyMap<string, number>, unkId: number): WordModel {
  return (word) => [vocab.get(word) ?? unkId];
}

/** Global (`g`) regex matches of every piece; text between matches is dropped. */
function keepMatches(source: string, flags: string): PreTokenize {
  const re = new RegExp(source, flags);
  return (pieces) => pieces.flatMap((piece) => piece.match(re) ?? []);
}

// ---------------------------------------------------------------------------------------------
// CLIP BPE (vocab.json + merges.txt)

/** ftfy (NFC) + `whitespace_clean` + lower, as transformers' CLIPTokenizer. */
function clipNormalize(text: string): string {
  return text.normalize('NFC').replace(/\s+/g, ' ').trim().toLowerCase();
}

function lookupToken(vocab: ReadonlyMap<string, number>, token: string, role: string, where: string): number {
  const id = vocab.get(token);
  if (id === undefined) throw new Error(`${where}: ${role} token ${JSON.stringify(token)} is not in the vocab`);
  return id;
}

function splitMerge(line: string, where: string): [string, string] {
  const parts = line.split(' ');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new Error(`${where}: expected a merge "a b", got ${JSON.stringify(line)}`);
  }
  return [parts[0], parts[1]];
}

function clipBpeFromMaps(
  vocab: ReadonlyMap<string, number>,
  merges: ReadonlyArray<readonly [string, string]>,
  opts: { maxLength?: number; padToken?: string },
  where: string,
): Tokenizer {
  const bos = lookupToken(vocab, CLIP_BOS, 'BOS', where);
  const eos = lookupToken(vocab, CLIP_EOS, 'EOS', where);
  const pad = opts.padToken === undefined ? eos : lookupToken(vocab, opts.padToken, 'pad', where);
  const maxLength = checkMaxLength(opts.maxLength ?? DEFAULT_MAX_LENGTH, where);
  // The slow tokenizer seeds its BPE cache with the two special tokens, so typed specials map to their ids.
  const specials = new Map([[CLIP_BOS, bos], [CLIP_EOS, eos]]);
  // transformers: unknown tokens -> unk_token, which defaults to <|endoftext|> for CLIP.
  const bpe = bpeModel({ vocab, ranks: mergeRanks(merges), endOfWordSuffix: '</w>', unkId: eos, fuseUnk: false });
  const model: WordModel = (word) => {
    const special = specials.get(word);
    return special === undefined ? bpe(byteLevelEncode(word)) : [special];
  };
  return makeTokenizer(clipNormalize, keepMatches(CLIP_SPLIT, 'giu'), model, { maxLength, bos, eos, pad });
}

/**
 * CLIP BPE tokenizer (SD-1.x text encoder) from a `vocab.json` map and merge lines ("a b", header already removed).
 * BOS `<|startoftext|>`, EOS `<|endoftext|>`; pad defaults to EOS; maxLength defaults to 77.
 */
export function clipBpeTokenizer(
  vocab: Record<string, number>,
  merges: string[],
  opts: { maxLength?: number; padToken?: string } = {},
): Tokenizer {
  const pairs = merges.map((line, i) => splitMerge(line, `clipBpeTokenizer: merges[${i}]`));
  return clipBpeFromMaps(new Map(Object.entries(vocab)), pairs, opts, 'clipBpeTokenizer');
}

/** `merges.txt` -> merge pairs: drops a `#version` header and blank lines, keeps at most CLIP_MERGE_LIMIT. */
function parseMergesTxt(text: string, file: string): Array<[string, string]> {
  const lines = text.split(/\r?\n/);
  const merges: Array<[string, string]> = [];
  for (let i = 0; i < lines.length && merges.length < CLIP_MERGE_LIMIT; i++) {
    const isHeader = i === 0 && lines[i].startsWith('#');
    if (!isHeader && lines[i] !== '') merges.push(splitMerge(lines[i], `${file}: line ${i + 1}`));
  }
  return merges;
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json / tokenizer_config.json schemas (parsed with zod at the file boundary)

/** zod error for an unknown `type` discriminator: names the kind, the type and what is supported. */
function unsupportedType(kind: string, supported: readonly string[]) {
  return (issue: { input?: unknown }) => {
    const input = issue.input as { type?: unknown } | undefined;
    const type = typeof input === 'object' && input !== null ? input.type : undefined;
    const what = type === undefined ? `missing ${kind} "type"` : `unsupported ${kind} type ${JSON.stringify(type)}`;
    return `${what} (supported: ${supported.join(', ')})`;
  };
}

const patternSchema = z.union([z.object({ Regex: z.string() }), z.object({ String: z.string() })]);
type PatternConfig = z.infer<typeof patternSchema>;

type NormalizerConfig =
  | { type: 'Lowercase' }
  | { type: 'NFC' | 'NFD' | 'NFKC' | 'NFKD' }
  | { type: 'Strip'; strip_left?: boolean; strip_right?: boolean }
  | { type: 'Replace'; pattern: PatternConfig; content: string }
  | { type: 'Sequence'; normalizers: NormalizerConfig[] };

const NORMALIZER_TYPES = ['Lowercase', 'NFC', 'NFD', 'NFKC', 'NFKD', 'Strip', 'Replace', 'Sequence'] as const;

const normalizerSchema: z.ZodType<NormalizerConfig> = z.lazy(() =>
  z.discriminatedUnion(
    'type',
    [
      z.object({ type: z.literal('Lowercase') }),
      z.object({ type: z.literal(['NFC', 'NFD', 'NFKC', 'NFKD']) }),
      z.object({ type: z.literal('Strip'), strip_left: z.boolean().optional(), strip_right: z.boolean().optional() }),
      z.object({ type: z.literal('Replace'), pattern: patternSchema, content: z.string() }),
      z.object({ type: z.literal('Sequence'), normalizers: z.array(normalizerSchema) }),
    ],
    { error: unsupportedType('normalizer', NORMALIZER_TYPES) },
  ),
);

type PreTokenizerConfig =
  | { type: 'Whitespace' }
  | { type: 'WhitespaceSplit' }
  | { type: 'ByteLevel'; add_prefix_space?: boolean; use_regex?: boolean }
  | { type: 'Split'; pattern: PatternConfig; behavior: 'Removed' | 'Isolated'; invert?: boolean }
  | { type: 'Sequence'; pretokenizers: PreTokenizerConfig[] };

const PRE_TOKENIZER_TYPES = ['Whitespace', 'WhitespaceSplit', 'ByteLevel', 'Split', 'Sequence'] as const;

const preTokenizerSchema: z.ZodType<PreTokenizerConfig> = z.lazy(() =>
  z.discriminatedUnion(
    'type',
    [
      z.object({ type: z.literal('Whitespace') }),
      z.object({ type: z.literal('WhitespaceSplit') }),
      z.object({
        type: z.literal('ByteLevel'),
        add_prefix_space: z.boolean().optional(),
        use_regex: z.boolean().optional(),
      }),
      z.object({
        type: z.literal('Split'),
        pattern: patternSchema,
        behavior: z.enum(['Removed', 'Isolated']),
        invert: z.boolean().optional(),
      }),
      z.object({ type: z.literal('Sequence'), pretokenizers: z.array(preTokenizerSchema) }),
    ],
    { error: unsupportedType('pre_tokenizer', PRE_TOKENIZER_TYPES) },
  ),
);

const vocabSchema = z.record(z.string(), z.number().int().nonnegative());
const mergeSchema = z.union([z.string(), z.tuple([z.string(), z.string()])]);
/** HF writes null/""/false/0 for options it does not use; anything else changes the output, so refuse it. */
const unusedOption = (name: string) =>
  z.union([z.string(), z.number(), z.boolean(), z.null()]).optional()
    .refine((v) => !v, { message: `${name} is not supported` });

const modelSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('WordLevel'), vocab: vocabSchema, unk_token: z.string() }),
    z.object({
      type: z.literal('BPE'),
      vocab: vocabSchema,
      merges: z.array(mergeSchema),
      unk_token: z.string().nullish(),
      end_of_word_suffix: z.string().nullish(),
      fuse_unk: z.boolean().optional(),
      continuing_subword_prefix: unusedOption('continuing_subword_prefix'),
      byte_fallback: unusedOption('byte_fallback'),
      dropout: unusedOption('dropout (encoding must be deterministic)'),
      ignore_merges: unusedOption('ignore_merges'),
    }),
  ],
  { error: unsupportedType('model', ['WordLevel', 'BPE']) },
);
type ModelConfig = z.infer<typeof modelSchema>;

const templatePieceSchema = z.union([
  z.object({ SpecialToken: z.object({ id: z.string() }) }),
  z.object({ Sequence: z.object({ id: z.enum(['A', 'B']) }) }),
]);
const tokenIdPairSchema = z.tuple([z.string(), z.number().int().nonnegative()]);

type PostProcessorConfig =
  | {
      type: 'TemplateProcessing';
      single: Array<z.infer<typeof templatePieceSchema>>;
      special_tokens?: Record<string, { ids: number[] }>;
    }
  | { type: 'RobertaProcessing' | 'BertProcessing'; cls: [string, number]; sep: [string, number] }
  | { type: 'ByteLevel' }
  | { type: 'Sequence'; processors: PostProcessorConfig[] };

const POST_PROCESSOR_TYPES = ['TemplateProcessing', 'RobertaProcessing', 'BertProcessing', 'ByteLevel', 'Sequence'];

const postProcessorSchema: z.ZodType<PostProcessorConfig> = z.lazy(() =>
  z.discriminatedUnion(
    'type',
    [
      z.object({
        type: z.literal('TemplateProcessing'),
        single: z.array(templatePieceSchema),
        special_tokens: z.record(z.string(), z.object({ ids: z.array(z.number().int().nonnegative()) })).optional(),
      }),
      z.object({ type: z.literal(['RobertaProcessing', 'BertProcessing']), cls: tokenIdPairSchema, sep: tokenIdPairSchema }),
      z.object({ type: z.literal('ByteLevel') }),
      z.object({ type: z.literal('Sequence'), processors: z.array(postProcessorSchema) }),
    ],
    { error: unsupportedType('post_processor', POST_PROCESSOR_TYPES) },
  ),
);

const tokenizerJsonSchema = z.object({
  added_tokens: z.array(z.object({ id: z.number().int().nonnegative(), content: z.string() })).nullish(),
  normalizer: normalizerSchema.nullish(),
  pre_tokenizer: preTokenizerSchema.nullish(),
  post_processor: postProcessorSchema.nullish(),
  padding: z.object({ pad_id: z.number().int().nonnegative().optional(), pad_token: z.string().optional() }).nullish(),
  truncation: z.object({ max_length: z.number().int() }).nullish(),
  model: modelSchema,
});
type TokenizerJson = z.infer<typeof tokenizerJsonSchema>;

/** transformers writes special tokens either as strings or as AddedToken objects. */
const tokenRefSchema = z.union([z.string(), z.object({ content: z.string() })]).nullish();
const tokenizerConfigSchema = z.object({
  model_max_length: z.number().optional(),
  bos_token: tokenRefSchema,
  eos_token: tokenRefSchema,
  pad_token: tokenRefSchema,
});
type TokenizerConfig = z.infer<typeof tokenizerConfigSchema>;

function tokenName(ref: TokenizerConfig['pad_token']): string | undefined {
  if (ref === null || ref === undefined) return undefined;
  return typeof ref === 'string' ? ref : ref.content;
}

/** Own-property lookup (parsed JSON objects still inherit `constructor`, `toString`, ...). */
function ownValue<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}

/** Parse with zod; errors read `FILE: field.path: message`. */
function parseWith<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const shown = issues.slice(0, 3).map((issue) => `${file}: ${formatPath(issue.path)}: ${issue.message}`);
  const more = issues.length > shown.length ? ` (and ${issues.length - shown.length} more)` : '';
  throw new Error(shown.join('; ') + more);
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json factories (one switch per config union; unknown types throw)

/**
 * Oniguruma's scoped case-insensitive group `(?i:...)` (Qwen2's pre-tokenizer uses it; JavaScript before V8's regexp
 * modifiers has none) as a plain group with each ASCII letter as `[xX]`. Only for groups without character classes
 * or escapes, which is what tokenizers write; anything else is left for RegExp to reject.
 */
export function expandCaseInsensitiveGroups(source: string): string {
  return source.replace(/\(\?i:([^()[\]\\]*)\)/g, (_, body: string) =>
    `(?:${body.replace(/[a-zA-Z]/g, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`)})`,
  );
}

function toRegExp(pattern: PatternConfig, flags: string, where: string): RegExp {
  if ('String' in pattern) return new RegExp(pattern.String.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&'), flags);
  try {
    return new RegExp(expandCaseInsensitiveGroups(pattern.Regex), flags);
  } catch (error) {
    throw new Error(`${where}.pattern: regex not supported here: ${(error as Error).message}`, { cause: error });
  }
}

function createNormalizer(config: NormalizerConfig, where: string): Normalize {
  switch (config.type) {
    case 'Lowercase':
      return (text) => text.toLowerCase();
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = config.type;
      return (text) => text.normalize(form);
    }
    case 'Strip': {
      const left = config.strip_left ?? true;
      const right = config.strip_right ?? true;
      return (text) => (left && right ? text.trim() : left ? text.trimStart() : right ? text.trimEnd() : text);
    }
    case 'Replace': {
      const re = toRegExp(config.pattern, 'gu', where);
      const content = config.content;
      return (text) => text.replace(re, () => content);
    }
    case 'Sequence': {
      const steps = config.normalizers.map((step, i) => createNormalizer(step, `${where}.normalizers.${i}`));
      return (text) => steps.reduce((acc, step) => step(acc), text);
    }
    default:
      return unknownType(config, where);
  }
}

/** Split pieces around regex matches; `invert` swaps which side counts as the delimiter. */
function splitPieces(re: RegExp, behavior: 'Removed' | 'Isolated', invert: boolean): PreTokenize {
  return (pieces) =>
    pieces.flatMap((piece) => {
      const out: string[] = [];
      const push = (text: string, isDelimiter: boolean) => {
        if (text !== '' && !(isDelimiter && behavior === 'Removed')) out.push(text);
      };
      let last = 0;
      for (const match of piece.matchAll(re)) {
        push(piece.slice(last, match.index), invert);
        push(match[0], !invert);
        last = match.index + match[0].length;
      }
      push(piece.slice(last), invert);
      return out;
    });
}

function byteLevelPreTokenizer(addPrefixSpace: boolean, useRegex: boolean): PreTokenize {
  const re = new RegExp(GPT2_SPLIT, 'gu');
  return (pieces) =>
    pieces.flatMap((piece) => {
      const text = addPrefixSpace && !piece.startsWith(' ') ? ` ${piece}` : piece;
      const words = useRegex ? (text.match(re) ?? []) : [text];
      return words.map(byteLevelEncode);
    });
}

function createPreTokenizer(config: PreTokenizerConfig, where: string): PreTokenize {
  switch (config.type) {
    case 'Whitespace':
      return keepMatches(HF_WHITESPACE_SPLIT, 'gu');
    case 'WhitespaceSplit':
      return keepMatches(String.raw`[^\p{White_Space}]+`, 'gu');
    case 'ByteLevel':
      return byteLevelPreTokenizer(config.add_prefix_space ?? true, config.use_regex ?? true);
    case 'Split':
      return splitPieces(toRegExp(config.pattern, 'gu', where), config.behavior, config.invert ?? false);
    case 'Sequence': {
      const steps = config.pretokenizers.map((step, i) => createPreTokenizer(step, `${where}.pretokenizers.${i}`));
      return (pieces) => steps.reduce((acc, step) => step(acc), pieces);
    }
    default:
      return unknownType(config, where);
  }
}

function createModel(config: ModelConfig, where: string): WordModel {
  const vocab = new Map(Object.entries(config.vocab));
  switch (config.type) {
    case 'WordLevel':
      return wordLevelModel(vocab, lookupToken(vocab, config.unk_token, 'unk', `${where}.unk_token`));
    case 'BPE': {
      const merges = config.merges.map((merge, i) =>
        typeof merge === 'string' ? splitMerge(merge, `${where}.merges.${i}`) : merge,
      );
      const unkId = config.unk_token ? lookupToken(vocab, config.unk_token, 'unk', `${where}.unk_token`) : undefined;
      return bpeModel({
        vocab,
        ranks: mergeRanks(merges),
        endOfWordSuffix: config.end_of_word_suffix ?? '',
        unkId,
        fuseUnk: config.fuse_unk ?? false,
      });
    }
    default:
      return unknownType(config, where);
  }
}

/** Reached only if a config slipped past its schema; keeps the switches exhaustive. */
function unknownType(config: never, where: string): never {
  throw new Error(`${where}: unsupported type ${JSON.stringify((config as { type?: unknown }).type)}`);
}

/** The special-token names around the text in a `[special, A, special]` single-sequence template. */
function templateEnds(single: Array<z.infer<typeof templatePieceSchema>>, where: string): [string, string] {
  if (single.length === 3) {
    const [first, middle, last] = single;
    if ('SpecialToken' in first && 'Sequence' in middle && 'SpecialToken' in last) {
      return [first.SpecialToken.id, last.SpecialToken.id];
    }
  }
  throw new Error(`${where}: expected the template [special, A, special] (BOS, text, EOS)`);
}

/** BOS/EOS ids declared by a post-processor: the single-sequence template must be [special, A, special]. */
function postProcessorSpecials(
  config: PostProcessorConfig,
  resolve: (token: string, role: string) => number,
  where: string,
): { bos: number; eos: number } | undefined {
  switch (config.type) {
    case 'TemplateProcessing': {
      const [bosName, eosName] = templateEnds(config.single, `${where}.single`);
      const tokens = config.special_tokens ?? {};
      const idOf = (name: string, role: string) => ownValue(tokens, name)?.ids[0] ?? resolve(name, role);
      return { bos: idOf(bosName, 'BOS'), eos: idOf(eosName, 'EOS') };
    }
    case 'RobertaProcessing':
    case 'BertProcessing':
      return { bos: config.cls[1], eos: config.sep[1] };
    case 'ByteLevel':
      return undefined;
    case 'Sequence': {
      const found = config.processors.map((step, i) => postProcessorSpecials(step, resolve, `${where}.processors.${i}`));
      return found.find((specials) => specials !== undefined);
    }
    default:
      return unknownType(config, where);
  }
}

interface Sources {
  tokenizer: string;
  config: string;
}

function frameFromJson(json: TokenizerJson, config: TokenizerConfig, sources: Sources): Frame {
  const added = new Map((json.added_tokens ?? []).map((token) => [token.content, token.id] as const));
  const resolve = (token: string, role: string, file = sources.tokenizer): number => {
    const id = added.get(token) ?? ownValue(json.model.vocab, token);
    if (id === undefined) {
      throw new Error(`${file}: ${role} token ${JSON.stringify(token)} is in neither added_tokens nor model.vocab`);
    }
    return id;
  };
  const fromPost = json.post_processor
    ? postProcessorSpecials(json.post_processor, resolve, `${sources.tokenizer}: post_processor`)
    : undefined;
  const bos = fromPost?.bos ?? resolve(tokenName(config.bos_token) ?? CLIP_BOS, 'BOS');
  const eos = fromPost?.eos ?? resolve(tokenName(config.eos_token) ?? CLIP_EOS, 'EOS');
  // transformers pads with the config's pad_token (it overrides tokenizer.json padding); then the file's own.
  const configPad = tokenName(config.pad_token);
  const pad = configPad !== undefined
    ? resolve(configPad, 'pad', sources.config)
    : json.padding?.pad_id ?? (json.padding?.pad_token !== undefined ? resolve(json.padding.pad_token, 'pad') : eos);
  return { maxLength: maxLengthFrom(config, json.truncation?.max_length, sources), bos, eos, pad };
}

function maxLengthFrom(config: TokenizerConfig, truncation: number | undefined, sources: Sources): number {
  const fromConfig = config.model_max_length;
  if (fromConfig !== undefined && fromConfig < UNSET_MODEL_MAX_LENGTH) {
    return checkMaxLength(fromConfig, `${sources.config}: model_max_length`);
  }
  if (truncation !== undefined) return checkMaxLength(truncation, `${sources.tokenizer}: truncation.max_length`);
  return DEFAULT_MAX_LENGTH;
}

function buildFromJson(tokenizerJson: unknown, tokenizerConfig: unknown, sources: Sources): Tokenizer {
  const json = parseWith(tokenizerJsonSchema, tokenizerJson, sources.tokenizer);
  const config = parseWith(tokenizerConfigSchema, tokenizerConfig ?? {}, sources.config);
  const at = (field: string) => `${sources.tokenizer}: ${field}`;
  const normalize = json.normalizer ? createNormalizer(json.normalizer, at('normalizer')) : (text: string) => text;
  // HF with no pre-tokenizer feeds the whole normalized string to the model as one word.
  const preTokenize = json.pre_tokenizer
    ? createPreTokenizer(json.pre_tokenizer, at('pre_tokenizer'))
    : (pieces: string[]) => pieces.filter((piece) => piece !== '');
  const model = createModel(json.model, at('model'));
  return makeTokenizer(normalize, preTokenize, model, frameFromJson(json, config, sources));
}

/**
 * Tokenizer from parsed `tokenizer.json` (+ optional `tokenizer_config.json`) objects.
 * Models: WordLevel, BPE. BOS/EOS come from the post-processor, else from added tokens / vocab
 * (`<|startoftext|>`/`<|endoftext|>` or the config's bos/eos_token); pad from the config's pad_token,
 * else `padding`, else EOS; maxLength from model_max_length, else `truncation.max_length`, else 77.
 */
export function tokenizerFromJson(tokenizerJson: unknown, tokenizerConfig?: unknown): Tokenizer {
  return buildFromJson(tokenizerJson, tokenizerConfig, { tokenizer: 'tokenizer.json', config: 'tokenizer_config.json' });
}

/** A tokenizer.json as transformers' `tokenizer(text)` runs it for models that frame nothing (Qwen2/3): no BOS/EOS. */
export interface TextTokenizer {
  /** ids of `text`: added tokens typed in it are matched first, each stretch between them is tokenized alone */
  encode(text: string): number[];
  /** the id of an added token or vocab entry; throws naming the file when absent */
  tokenId(token: string, role: string): number;
}

const addedTokenSchema = z.object({
  id: z.number().int().nonnegative(),
  content: z.string().min(1),
  single_word: z.boolean().optional().refine((v) => !v, { message: 'single_word added tokens are not supported' }),
  lstrip: z.boolean().optional().refine((v) => !v, { message: 'lstrip added tokens are not supported' }),
  rstrip: z.boolean().optional().refine((v) => !v, { message: 'rstrip added tokens are not supported' }),
});

/**
 * HF tokenizers' added-vocabulary split, then normalizer -> pre-tokenizer -> model per stretch. Added tokens match
 * leftmost-longest on the raw text (HF matches `normalized` ones on the normalized text; the two agree for the
 * ASCII markers chat models use, such as `<|im_start|>` and `<think>`).
 */
export function textTokenizerFromJson(tokenizerJson: unknown, file = 'tokenizer.json'): TextTokenizer {
  const json = parseWith(tokenizerJsonSchema, tokenizerJson, file);
  const addedList = parseWith(z.array(addedTokenSchema), json.added_tokens ?? [], `${file}: added_tokens`);
  const at = (field: string) => `${file}: ${field}`;
  const normalize = json.normalizer ? createNormalizer(json.normalizer, at('normalizer')) : (text: string) => text;
  const preTokenize = json.pre_tokenizer
    ? createPreTokenizer(json.pre_tokenizer, at('pre_tokenizer'))
    : (pieces: string[]) => pieces.filter((piece) => piece !== '');
  const model = createModel(json.model, at('model'));
  const added = new Map(addedList.map((t) => [t.content, t.id] as const));
  const longestFirst = [...added.keys()].sort((a, b) => b.length - a.length);
  const split = longestFirst.length
    ? new RegExp(longestFirst.map((t) => t.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')).join('|'), 'g')
    : null;
  const encodeStretch = (text: string, ids: number[]) => {
    if (text === '') return;
    for (const word of preTokenize([normalize(text)])) for (const id of model(word)) ids.push(id);
  };
  return {
    encode(text) {
      const ids: number[] = [];
      let last = 0;
      for (const match of split ? text.matchAll(split) : []) {
        encodeStretch(text.slice(last, match.index), ids);
        ids.push(added.get(match[0])!);
        last = match.index + match[0].length;
      }
      encodeStretch(text.slice(last), ids);
      return ids;
    },
    tokenId(token, role) {
      const id = added.get(token) ?? ownValue(json.model.vocab, token);
      if (id === undefined) throw new Error(`${file}: ${role} token ${JSON.stringify(token)} is in neither added_tokens nor model.vocab`);
      return id;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Loading a model's tokenizer/ folder

function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

function readJson(path: string): unknown {
  const text = readText(path);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: invalid JSON: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Loads a tokenizer folder: `tokenizer.json` if present (with `tokenizer_config.json` when present),
 * else CLIP BPE from `vocab.json` + `merges.txt` (pad_token / model_max_length from `tokenizer_config.json`).
 */
export function loadTokenizer(dir: string): Tokenizer {
  const path = (name: string) => join(dir, name);
  const configPath = path('tokenizer_config.json');
  const configJson = existsSync(configPath) ? readJson(configPath) : undefined;
  const sources = { tokenizer: path('tokenizer.json'), config: configPath };

  if (existsSync(sources.tokenizer)) return buildFromJson(readJson(sources.tokenizer), configJson, sources);

  const vocabPath = path('vocab.json');
  const mergesPath = path('merges.txt');
  if (!existsSync(vocabPath) || !existsSync(mergesPath)) {
    const missing = ['vocab.json', 'merges.txt'].filter((name) => !existsSync(path(name)));
    throw new Error(
      `${dir}: no tokenizer found: looked for tokenizer.json, or vocab.json + merges.txt (missing: ${missing.join(', ')})`,
    );
  }
  const vocab = parseWith(vocabSchema, readJson(vocabPath), vocabPath);
  const merges = parseMergesTxt(readText(mergesPath), mergesPath);
  const config = parseWith(tokenizerConfigSchema, configJson ?? {}, configPath);
  const maxLength = maxLengthFrom(config, undefined, sources);
  const padToken = tokenName(config.pad_token);
  return clipBpeFromMaps(new Map(Object.entries(vocab)), merges, { maxLength, padToken }, vocabPath);
}
