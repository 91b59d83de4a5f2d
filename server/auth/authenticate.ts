/**
 * Who a request is: a personal token (`Authorization: Bearer ll_…`), the shared --token, or nobody on a
 * token-less loopback server. The last two act as the default user (server/store/accounts.ts), so a server
 * without accounts behaves as it always did.
 *
 * Every request rereads the token's row and its user: a revoked token or a disabled user is refused by the
 * very next request, whichever process revoked it (the admin CLI writes to the same store). Only the scrypt
 * check of a (token id, secret) pair is cached, because its answer never changes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type AccountStore, DEFAULT_USER_ID, type Principal } from '../store';
import { decoyHash, parseToken, verifyTokenSecret } from './tokens';

export type AuthMode = 'token' | 'shared-token' | 'loopback';

export type AuthResult = { ok: true; principal: Principal; mode: AuthMode; tokenId: string | null } | { ok: false; message: string };

export const UNAUTHORIZED_MESSAGE =
  "this server requires a token: send the header 'Authorization: Bearer <token>' with your personal token (an admin creates it with `npm run users -- tokens create`) or the server's shared token (--token / LAYERLOOP_TOKEN)";
export const REFUSED_TOKEN_MESSAGE = 'this token is not valid on this server (unknown, revoked, or its user is disabled): ask an admin for a new one';

export interface AuthenticatorOptions {
  /** the shared --token; null when there is none */
  sharedToken: string | null;
  /** whether a request without a token acts as the default user (a loopback server without --token) */
  tokenless: boolean;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Checks that passed, by the presented token's sha256 (bounded: cleared when full). */
const MAX_CACHED = 10_000;

export class Authenticator {
  private readonly verified = new Map<string, string>();

  constructor(
    private readonly accounts: AccountStore,
    private readonly options: AuthenticatorOptions,
  ) {}

  /** `presented`: the Bearer token, or null when the request carries none. */
  async authenticate(presented: string | null): Promise<AuthResult> {
    if (presented === null) return this.options.tokenless ? this.asDefaultUser('loopback') : { ok: false, message: UNAUTHORIZED_MESSAGE };
    const personal = parseToken(presented);
    if (personal) return this.personal(presented, personal);
    const shared = this.options.sharedToken;
    if (shared !== null && timingSafeEqual(digest(shared), digest(presented))) return this.asDefaultUser('shared-token');
    // a token-less server ignores a header it never asked for (as it always has); personal tokens are still checked
    if (this.options.tokenless) return this.asDefaultUser('loopback');
    return { ok: false, message: shared === null ? REFUSED_TOKEN_MESSAGE : UNAUTHORIZED_MESSAGE };
  }

  private async personal(presented: string, token: { id: string; secret: string }): Promise<AuthResult> {
    const refused = { ok: false as const, message: REFUSED_TOKEN_MESSAGE };
    const key = digest(presented).toString('hex');
    const credential = await this.accounts.credential(token.id);
    if (this.verified.get(key) !== token.id) {
      // an unknown id costs a check too, so the answer's timing does not tell which ids exist
      const matches = await verifyTokenSecret(token.secret, credential?.hash ?? (await decoyHash()));
      if (!credential || !matches) return refused;
      if (this.verified.size >= MAX_CACHED) this.verified.clear();
      this.verified.set(key, token.id);
    }
    if (!credential || credential.revoked) return refused;
    const principal = await this.accounts.principal(credential.userId);
    if (!principal) return refused;
    return { ok: true, principal, mode: 'token', tokenId: credential.tokenId };
  }

  private async asDefaultUser(mode: AuthMode): Promise<AuthResult> {
    // disabling the default user turns the shared-token and token-less modes off
    const principal = await this.accounts.principal(DEFAULT_USER_ID);
    if (!principal) return { ok: false, message: `the shared and token-less access of this server is disabled (its default user is): use a personal token` };
    return { ok: true, principal, mode, tokenId: null };
  }
}
