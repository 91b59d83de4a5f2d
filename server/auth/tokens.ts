/**
 * Personal API tokens: how they look, and how their secret is kept (only as a slow hash).
 *
 * A token reads `ll_<token id>_<secret>`: the id (a uuid) finds the one stored hash to check, so a request costs
 * one scrypt, not one per token in the store; the secret is 32 random bytes (base64url). The stored hash is
 * `scrypt$N$r$p$salt$key` (node:crypto's scrypt, a fresh salt per token), compared in constant time.
 */
import { randomBytes, randomUUID, scrypt, timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIX = 'll_';
const TOKEN_PATTERN = /^ll_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** scrypt's cost: about 16 MiB and tens of ms per check (the server caches checks that passed: authenticate.ts). */
const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 } as const;

export interface NewToken {
  id: string;
  /** shown once, to the person it is for; never stored */
  text: string;
  secret: string;
}

export function newToken(): NewToken {
  const id = randomUUID();
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, text: `${TOKEN_PREFIX}${id}_${secret}` };
}

/** The id and secret of a presented personal token; null when it is not one (a shared token, garbage). */
export function parseToken(text: string): { id: string; secret: string } | null {
  const m = TOKEN_PATTERN.exec(text);
  return m ? { id: m[1], secret: m[2] } : null;
}

function scryptKey(secret: string, salt: Buffer, params: { N: number; r: number; p: number; keyLength: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, params.keyLength, { N: params.N, r: params.r, p: params.p, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** The stored form of a secret. */
export async function hashTokenSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptKey(secret, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

const STORED_PATTERN = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/;

/** Whether `secret` hashes to `stored`; false for a malformed stored hash. Constant-time in the key comparison. */
export async function verifyTokenSecret(secret: string, stored: string): Promise<boolean> {
  const m = STORED_PATTERN.exec(stored);
  if (!m) return false;
  const expected = Buffer.from(m[5], 'base64url');
  const params = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]), keyLength: expected.length };
  if (params.keyLength < 16 || params.N > 1 << 20) return false;
  const key = await scryptKey(secret, Buffer.from(m[4], 'base64url'), params);
  return timingSafeEqual(key, expected);
}

/** A hash no secret matches, checked against when the token id is unknown so that costs as long as a real check. */
let decoy: Promise<string> | null = null;
export function decoyHash(): Promise<string> {
  decoy ??= hashTokenSecret(randomBytes(32).toString('base64url'));
  return decoy;
}
