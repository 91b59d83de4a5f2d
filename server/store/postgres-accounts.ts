/**
 * The PostgreSQL AccountStore (accounts.ts), on the PostgresEditStore's pool: the same rows and answers as the
 * embedded one (sqlite-accounts.ts), held to the same contract tests.
 */
import { randomUUID } from 'node:crypto';
import {
  AccountName,
  type AccountStore,
  BlobGrantInput,
  type BlobGrantInput as BlobGrantInputType,
  CreateTokenInput,
  type CreateTokenInput as CreateTokenInputType,
  CreateUserInput,
  type CreateUserInput as CreateUserInputType,
  type Principal,
  type TokenCredential,
  type TokenRecord,
  type User,
  type UserSummary,
  type Workspace,
  type WorkspaceSummary,
} from './accounts';
import type { Queryable } from './postgres';
import { toToken, toUser, toWorkspace, toWorkspaceSummary } from './rows';
import { Id, Sha256, StoreError, parseOrThrow } from './store';

type Row = Record<string, unknown>;

const GRANT_INSERT = `INSERT INTO blob_grants (workspace_id, sha256, size, user_id, created_at) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (workspace_id, sha256) DO NOTHING`;

/** PostgreSQL's unique_violation on a named constraint. */
function violates(error: unknown, constraint: string): boolean {
  const e = error as { code?: unknown; constraint?: unknown } | null;
  return e?.code === '23505' && e.constraint === constraint;
}

export class PostgresAccountStore implements AccountStore {
  constructor(
    /** single statements on the pool */
    private readonly db: Queryable,
    private readonly transaction: <T>(fn: (tx: Queryable) => Promise<T>) => Promise<T>,
    private readonly now: () => Date,
  ) {}

  async createWorkspace(name: string): Promise<Workspace> {
    const n = parseOrThrow(AccountName, name, 'createWorkspace name');
    try {
      const { rows } = await this.db.query('INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) RETURNING *', [randomUUID(), n, this.timestamp()]);
      return toWorkspace(rows[0]);
    } catch (error) {
      if (violates(error, 'workspaces_name_key')) throw new StoreError('invalid_input', `a workspace named '${n}' already exists`);
      throw error;
    }
  }

  async getWorkspace(id: string): Promise<Workspace | null> {
    const row = await this.one('SELECT * FROM workspaces WHERE id = $1', [parseOrThrow(Id, id, 'getWorkspace id')]);
    return row === undefined ? null : toWorkspace(row);
  }

  async workspaceByName(name: string): Promise<Workspace | null> {
    const row = await this.one('SELECT * FROM workspaces WHERE name = $1', [String(name)]);
    return row === undefined ? null : toWorkspace(row);
  }

  async listWorkspaces(): Promise<WorkspaceSummary[]> {
    const { rows } = await this.db.query(
      `SELECT w.*,
         (SELECT count(*) FROM memberships m WHERE m.workspace_id = w.id) AS members,
         (SELECT count(*) FROM documents d WHERE d.workspace_id = w.id) AS documents,
         (SELECT count(*) FROM jobs j JOIN documents d ON d.id = j.document_id WHERE d.workspace_id = w.id) AS jobs,
         (SELECT count(*) FROM blob_grants g WHERE g.workspace_id = w.id) AS blobs,
         (SELECT coalesce(sum(size), 0) FROM blob_grants g WHERE g.workspace_id = w.id) AS blob_bytes
       FROM workspaces w ORDER BY w.seq`,
    );
    return rows.map(toWorkspaceSummary);
  }

  async createUser(input: CreateUserInputType): Promise<User> {
    const u = parseOrThrow(CreateUserInput, input, 'createUser');
    const id = randomUUID();
    try {
      return await this.transaction(async (tx) => {
        if ((await tx.query('SELECT 1 FROM workspaces WHERE id = $1', [u.workspaceId])).rows.length === 0) {
          throw new StoreError('not_found', `createUser: no workspace ${u.workspaceId}`);
        }
        const now = this.timestamp();
        const { rows } = await tx.query(
          'INSERT INTO users (id, name, role, disabled, default_workspace_id, created_at) VALUES ($1, $2, $3, false, $4, $5) RETURNING *',
          [id, u.name, u.role, u.workspaceId, now],
        );
        await tx.query('INSERT INTO memberships (user_id, workspace_id, created_at) VALUES ($1, $2, $3)', [id, u.workspaceId, now]);
        return toUser(rows[0]);
      });
    } catch (error) {
      if (violates(error, 'users_name_key')) throw new StoreError('invalid_input', `a user named '${u.name}' already exists`);
      throw error;
    }
  }

  async getUser(id: string): Promise<User | null> {
    const row = await this.one('SELECT * FROM users WHERE id = $1', [parseOrThrow(Id, id, 'getUser id')]);
    return row === undefined ? null : toUser(row);
  }

  async userByName(name: string): Promise<User | null> {
    const row = await this.one('SELECT * FROM users WHERE name = $1', [String(name)]);
    return row === undefined ? null : toUser(row);
  }

  async listUsers(): Promise<UserSummary[]> {
    const { rows } = await this.db.query<Row & { workspace_names: string[] | null; active_tokens: number | string }>(
      `SELECT u.*,
         ARRAY(SELECT w.name FROM memberships m JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = u.id ORDER BY m.created_at, w.seq) AS workspace_names,
         (SELECT count(*) FROM tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) AS active_tokens
       FROM users u ORDER BY u.seq`,
    );
    return rows.map((row) => ({ ...toUser(row), workspaces: row.workspace_names ?? [], activeTokens: Number(row.active_tokens) }));
  }

  async setUserDisabled(userId: string, disabled: boolean): Promise<User> {
    const id = parseOrThrow(Id, userId, 'setUserDisabled userId');
    const { rows } = await this.db.query('UPDATE users SET disabled = $2 WHERE id = $1 RETURNING *', [id, disabled]);
    if (rows.length !== 1) throw new StoreError('not_found', `no user ${id}`);
    return toUser(rows[0]);
  }

  async addMember(userId: string, workspaceId: string): Promise<void> {
    const user = parseOrThrow(Id, userId, 'addMember userId');
    const workspace = parseOrThrow(Id, workspaceId, 'addMember workspaceId');
    if ((await this.one('SELECT 1 FROM users WHERE id = $1', [user])) === undefined) throw new StoreError('not_found', `no user ${user}`);
    if ((await this.one('SELECT 1 FROM workspaces WHERE id = $1', [workspace])) === undefined) throw new StoreError('not_found', `no workspace ${workspace}`);
    await this.db.query('INSERT INTO memberships (user_id, workspace_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [user, workspace, this.timestamp()]);
  }

  async principal(userId: string): Promise<Principal | null> {
    const id = parseOrThrow(Id, userId, 'principal userId');
    // one statement: the user and its workspaces as one consistent answer
    const { rows } = await this.db.query<Row & { workspaces: unknown }>(
      `SELECT u.*, coalesce((
         SELECT json_agg(json_build_object('id', w.id, 'name', w.name, 'created_at', w.created_at)
                         ORDER BY (w.id = u.default_workspace_id) DESC, m.created_at, w.seq)
         FROM memberships m JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = u.id), '[]') AS workspaces
       FROM users u WHERE u.id = $1`,
      [id],
    );
    if (rows.length === 0) return null;
    const user = toUser(rows[0]);
    if (user.disabled) return null;
    const listed = JSON.parse(String(rows[0].workspaces)) as Row[];
    // json_build_object writes timestamptz in PostgreSQL's own format: back to ISO-8601 like every other row
    return { user, workspaces: listed.map((w) => toWorkspace({ ...w, created_at: new Date(String(w.created_at)).toISOString() })) };
  }

  async createToken(input: CreateTokenInputType): Promise<TokenRecord> {
    const t = parseOrThrow(CreateTokenInput, input, 'createToken');
    if ((await this.one('SELECT 1 FROM users WHERE id = $1', [t.userId])) === undefined) throw new StoreError('not_found', `createToken: no user ${t.userId}`);
    try {
      const { rows } = await this.db.query('INSERT INTO tokens (id, user_id, name, hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *', [
        t.id,
        t.userId,
        t.name,
        t.hash,
        this.timestamp(),
      ]);
      return toToken(rows[0]);
    } catch (error) {
      if (violates(error, 'tokens_active_name')) throw new StoreError('invalid_input', `this user already has a token named '${t.name}': pick another name, or revoke that one first`);
      throw error;
    }
  }

  async listTokens(userId: string): Promise<TokenRecord[]> {
    const { rows } = await this.db.query('SELECT * FROM tokens WHERE user_id = $1 ORDER BY seq', [parseOrThrow(Id, userId, 'listTokens userId')]);
    return rows.map(toToken);
  }

  async revokeToken(selector: { tokenId: string } | { userId: string; name: string }): Promise<TokenRecord> {
    const row =
      'tokenId' in selector
        ? await this.one('SELECT * FROM tokens WHERE id = $1', [parseOrThrow(Id, selector.tokenId, 'revokeToken tokenId')])
        : await this.one('SELECT * FROM tokens WHERE user_id = $1 AND name = $2 AND revoked_at IS NULL', [parseOrThrow(Id, selector.userId, 'revokeToken userId'), String(selector.name)]);
    if (row === undefined) throw new StoreError('not_found', 'tokenId' in selector ? `no token ${selector.tokenId}` : `this user has no active token named '${selector.name}'`);
    const { rows } = await this.db.query('UPDATE tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING *', [String(row.id), this.timestamp()]);
    return toToken(rows[0]);
  }

  async credential(tokenId: string): Promise<TokenCredential | null> {
    const row = await this.one('SELECT id, hash, revoked_at, user_id FROM tokens WHERE id = $1', [parseOrThrow(Id, tokenId, 'credential tokenId')]);
    return row === undefined ? null : { tokenId: String(row.id), hash: String(row.hash), revoked: row.revoked_at !== null, userId: String(row.user_id) };
  }

  async grantBlob(input: BlobGrantInputType): Promise<void> {
    const g = parseOrThrow(BlobGrantInput, input, 'grantBlob');
    await this.db.query(GRANT_INSERT, [g.workspaceId, g.sha256, g.size, g.userId, this.timestamp()]);
  }

  /** Grants inside the caller's transaction (the edit store's node inserts); idempotent. */
  async grantIn(tx: Queryable, grants: readonly BlobGrantInputType[]): Promise<void> {
    const now = this.timestamp();
    for (const g of grants) await tx.query(GRANT_INSERT, [g.workspaceId, g.sha256, g.size, g.userId, now]);
  }

  async blobVisible(workspaceIds: readonly string[], sha256: string): Promise<boolean> {
    const sha = parseOrThrow(Sha256, sha256, 'blobVisible sha256');
    if (workspaceIds.length === 0) return false;
    const row = await this.one('SELECT 1 FROM blob_grants WHERE sha256 = $1 AND workspace_id = ANY ($2::uuid[]) LIMIT 1', [sha, [...workspaceIds]]);
    return row !== undefined;
  }

  async storedBytes(userId: string): Promise<number> {
    const row = await this.one('SELECT coalesce(sum(size), 0)::bigint AS bytes FROM blob_grants WHERE user_id = $1', [parseOrThrow(Id, userId, 'storedBytes userId')]);
    return Number(row?.bytes ?? 0);
  }

  private async one(sql: string, values: unknown[]): Promise<Row | undefined> {
    return (await this.db.query<Row>(sql, values)).rows[0];
  }

  private timestamp(): string {
    return this.now().toISOString();
  }
}
