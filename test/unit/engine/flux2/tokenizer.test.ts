/**
 * The klein prompt tokenizer against transformers' Qwen2Tokenizer on the tiny model's tokenizer (values written by
 * tools/tiny-klein/make_parity_fixtures.py): the chat-templated, padded ids and mask the pipeline makes, and raw
 * encodings of text that exercises Qwen2's pre-tokenizer (contractions in any case, digits one by one, newlines,
 * runs of spaces, non-Latin scripts, added tokens typed in the prompt).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadChatTokenizer, qwen3ChatText } from '../../../../server/engine/flux2/tokenizer';
import { expandCaseInsensitiveGroups, textTokenizerFromJson } from '../../../../server/engine/tokenizer';

const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'fixtures', 'flux2');
const values = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'python-values.json'), 'utf8')) as {
  maxSequenceLength: number;
  templated: { prompt: string; text: string; input_ids: number[]; attention_mask: number[] }[];
  raw: { text: string; ids: number[] }[];
};
const TOKENIZER = path.join(FIXTURES, 'tiny-klein-base', 'tokenizer');

describe('klein prompt tokenizer (Qwen2 byte-level BPE + Qwen3 chat template)', () => {
  const chat = loadChatTokenizer(TOKENIZER, values.maxSequenceLength);
  const text = textTokenizerFromJson(JSON.parse(fs.readFileSync(path.join(TOKENIZER, 'tokenizer.json'), 'utf8')));

  it.each(values.templated.map((t) => [JSON.stringify(t.prompt), t] as const))('templated %s', (_name, t) => {
    expect(qwen3ChatText(t.prompt)).toBe(t.text);
    const { ids, mask } = chat.encode(t.prompt);
    expect(Array.from(ids)).toEqual(t.input_ids);
    expect(Array.from(mask)).toEqual(t.attention_mask);
  });

  it.each(values.raw.map((r) => [JSON.stringify(r.text), r] as const))('raw %s', (_name, r) => {
    expect(text.encode(r.text)).toEqual(r.ids);
  });

  it('truncates to the sequence length, keeping the first tokens', () => {
    const long = chat.encode('x'.repeat(200));
    expect(long.ids.length).toBe(values.maxSequenceLength);
    expect(Array.from(long.mask).every((m) => m === 1)).toBe(true);
    expect(Array.from(long.ids.subarray(0, 3))).toEqual(Array.from(chat.encode('').ids.subarray(0, 3)));
  });

  it("rewrites Oniguruma's (?i:...) groups for JavaScript", () => {
    const re = new RegExp(expandCaseInsensitiveGroups("(?i:'s|'ll)|x"), 'g');
    expect("It'S we'LL x".match(re)).toEqual(["'S", "'LL", 'x']);
  });

  it('refuses a chat template that is not Qwen3-style', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'klein-tok-'));
    fs.copyFileSync(path.join(TOKENIZER, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    fs.writeFileSync(path.join(dir, 'chat_template.jinja'), '{{ messages[0].content }}');
    expect(() => loadChatTokenizer(dir, 16)).toThrow(/chat template lacks <\|im_start\|>/);
  });
});
