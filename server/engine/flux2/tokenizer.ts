/**
 * The klein prompt as _get_qwen3_prompt_embeds tokenizes it: the instruction wrapped as one user message by Qwen3's
 * chat template (generation prompt on, thinking disabled), byte-level BPE from tokenizer.json (tokenizer.ts), then
 * truncated and right-padded with the pad token to `maxLength`, with the attention mask.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { textTokenizerFromJson, type TextTokenizer } from '../tokenizer';

/** What Qwen3's chat template writes for [{role: 'user', content}] with add_generation_prompt and enable_thinking=False. */
export function qwen3ChatText(prompt: string): string {
  return `<|im_start|>user\n${prompt}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n`;
}

/** The chat template's markers this engine writes itself; a template without them is another model's. */
const TEMPLATE_MARKERS = ['<|im_start|>', '<|im_end|>', '<think>', 'enable_thinking'] as const;

export interface PromptTokens {
  /** [maxLength] token ids, right-padded */
  ids: Int32Array;
  /** [maxLength] 1 for tokens, 0 for padding */
  mask: Int32Array;
}

export interface ChatTokenizer {
  readonly maxLength: number;
  encode(prompt: string): PromptTokens;
}

export function chatTokenizer(text: TextTokenizer, padId: number, maxLength: number): ChatTokenizer {
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new RangeError(`max sequence length must be an integer >= 1, got ${maxLength}`);
  return {
    maxLength,
    encode(prompt) {
      const content = text.encode(qwen3ChatText(prompt)).slice(0, maxLength);
      const ids = new Int32Array(maxLength).fill(padId);
      const mask = new Int32Array(maxLength);
      ids.set(content);
      mask.fill(1, 0, content.length);
      return { ids, mask };
    },
  };
}

function readJsonFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The tokenizer/ folder of a klein model: tokenizer.json, tokenizer_config.json (pad token), the chat template. */
export function loadChatTokenizer(dir: string, maxLength: number): ChatTokenizer {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file)) throw new Error(`${dir}: no tokenizer.json (a klein model's Qwen tokenizer)`);
  const text = textTokenizerFromJson(readJsonFile(file), file);
  const configFile = join(dir, 'tokenizer_config.json');
  const config = (existsSync(configFile) ? readJsonFile(configFile) : {}) as { pad_token?: unknown; chat_template?: unknown };
  const pad = typeof config.pad_token === 'string' ? config.pad_token : (config.pad_token as { content?: string } | undefined)?.content;
  const templateFile = join(dir, 'chat_template.jinja');
  const template = existsSync(templateFile) ? readFileSync(templateFile, 'utf8') : typeof config.chat_template === 'string' ? config.chat_template : null;
  if (template === null) throw new Error(`${dir}: no chat template (chat_template.jinja or tokenizer_config.json's chat_template)`);
  const missing = TEMPLATE_MARKERS.filter((m) => !template.includes(m));
  if (missing.length) {
    throw new Error(`${dir}: the chat template lacks ${missing.join(', ')}: this engine applies Qwen3's template (one user message, thinking disabled)`);
  }
  return chatTokenizer(text, text.tokenId(pad ?? '<|endoftext|>', 'pad'), maxLength);
}
