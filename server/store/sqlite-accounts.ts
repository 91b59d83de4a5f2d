/**
 * The embedded AccountStore (accounts.ts), on the SqliteEditStore's connection: users, workspaces, memberships,
 * tokens and blob grants in the same SQLite file as the documents they govern.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
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
import { toToken, toUser, toWorkspace, toWorkspaceSummary } from './rows';
import { Id, Sha256, StoreError, parseOrThrow } from './store';

/** SQLite's verdict on a UNIQUE constraint. */
function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_UNIQUE' || (error as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export class SqliteAccountStore implements AccountStore {
  private readonly sql: ReturnType<typeof prepareStatements>;

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => Date,
    /** the edit store's write wrapper: storage failures become StoreError('full' | 'unavailable') */
    private readonly write: <T>(fn: () => T) => T,
  ) {
    this.sql = prepareStatements(db);
  }

  async createWorkspace(name: string): Promise<Workspace> {
    const n = parseOrThrow(AccountName, name, 'createWorkspace name');
    const id = randomUUID();
    try {
      this.write(() => this.sql.insertWorkspace.run({ id, name: n, now: this.timestamp() }));
    } catch (error) {
      if (isUniqueViolation(error)) throw new StoreError('invalid_input', `a workspace named '${n}' already exists`);
      throw error;
    }
    return toWorkspace(this.sql.workspace.get(id));
  }

  async getWorkspace(id: string): Promise<Workspace | null> {
    const row = this.sql.workspace.get(parseOrThrow(Id, id, 'getWorkspace id'));
    return row === undefined ? null : toWorkspace(row);
  }

  async workspaceByName(name: string): Promise<Workspace | null> {
    const row = this.sql.workspaceByName.get(String(name));
    return row === undefined ? null : toWorkspace(row);
  }

  async listWorkspaces(): Promise<WorkspaceSummary[]> {
    return this.sql.workspaceSummaries.all().map(toWorkspaceSummary);
  }

  async createUser(input: CreateUserInputType): Promise<User> {
    const u = parseOrThrow(CreateUserInput, input, 'createUser');
    const id = randomUUID();
    this.write(() =>
      this.db
        .transaction(() => {
          if (this.sql.workspace.get(u.workspaceId) === undefined) throw new StoreError('not_found', `createUser: no workspace ${u.workspaceId}`);
          if (this.sql.userByName.get(u.name) !== undefined) throw new StoreError('invalid_input', `a user named '${u.name}' already exists`);
          const now = this.timestamp();
          this.sql.insertUser.run({ id, name: u.name, role: u.role, workspaceId: u.workspaceId, now });
          this.sql.insertMembership.run({ userId: id, workspaceId: u.workspaceId, now });
        })
        .immediate(),
    );
    return toUser(this.sql.user.get(id));
  }

  async getUser(id: string): Promise<User | null> {
    const row = this.sql.user.get(parseOrThrow(Id, id, 'getUser id'));
    return row === undefined ? null : toUser(row);
  }

  async userByName(name: string): Promise<User | null> {
    const row = this.sql.userByName.get(String(name));
    return row === undefined ? null : toUser(row);
  }

  async listUsers(): Promise<UserSummary[]> {
    return this.sql.userSummaries.all().map((row) => {
      const r = row as { workspace_names: string | null; active_tokens: number };
      return { ...toUser(row), workspaces: r.workspace_names ? (JSON.parse(r.workspace_names) as string[]) : [], activeTokens: r.active_tokens };
    });
  }

  async setUserDisabled(userId: string, disabled: boolean): Promise<User> {
    const id = parseOrThrow(Id, userId, 'setUserDisabled userId');
    const info = this.write(() => this.sql.setDisabled.run({ id, disabled: disabled ? 1 : 0 }));
    if (info.changes !== 1) throw new StoreError('not_found', `no user ${id}`);
    return toUser(this.sql.user.get(id));
  }

  async addMember(userId: string, workspaceId: string): Promise<void> {
    const user = parseOrThrow(Id, userId, 'addMember userId');
    const workspace = parseOrThrow(Id, workspaceId, 'addMember workspaceId');
    this.write(() =>
      this.db
        .transaction(() => {
          if (this.sql.user.get(user) === undefined) throw new StoreError('not_found', `no user ${user}`);
          if (this.sql.workspace.get(workspace) === undefined) throw new StoreError('not_found', `no workspace ${workspace}`);
          this.sql.insertMembership.run({ userId: user, workspaceId: workspace, now: this.timestamp() });
        })
        .immediate(),
    );
  }

  async principal(userId: string): Promise<Principal | null> {
    const id = parseOrThrow(Id, userId, 'principal userId');
    return this.db.transaction(() => {
      const row = this.sql.user.get(id);
      if (row === undefined) return null;
      const user = toUser(row);
      if (user.disabled) return null;
      return { user, workspaces: this.sql.workspacesOfUser.all(id).map(toWorkspace) };
    })();
  }

  async createToken(input: CreateTokenInputType): Promise<TokenRecord> {
    const t = parseOrThrow(CreateTokenInput, input, 'createToken');
    try {
      this.write(() =>
        this.db
          .transaction(() => {
            if (this.sql.user.get(t.userId) === undefined) throw new StoreError('not_found', `createToken: no user ${t.userId}`);
            this.sql.insertToken.run({ id: t.id, userId: t.userId, name: t.name, hash: t.hash, now: this.timestamp() });
          })
          .immediate(),
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw new StoreError('invalid_input', `this user already has a token named '${t.name}': pick another name, or revoke that one first`);
      throw error;
    }
    return toToken(this.sql.token.get(t.id));
  }

  async listTokens(userId: string): Promise<TokenRecord[]> {
    return this.sql.tokensOfUser.all(parseOrThrow(Id, userId, 'listTokens userId')).map(toToken);
  }

  async revokeToken(selector: { tokenId: string } | { userId: string; name: string }): Promise<TokenRecord> {
    const row =
      'tokenId' in selector
        ? this.sql.token.get(parseOrThrow(Id, selector.tokenId, 'revokeToken tokenId'))
        : this.sql.activeTokenByName.get({ userId: parseOrThrow(Id, selector.userId, 'revokeToken userId'), name: String(selector.name) });
    if (row === undefined) throw new StoreError('not_found', 'tokenId' in selector ? `no token ${selector.tokenId}` : `this user has no active token named '${selector.name}'`);
    const token = toToken(row);
    this.write(() => this.sql.revokeToken.run({ id: token.id, now: this.timestamp() }));
    return toToken(this.sql.token.get(token.id));
  }

  async credential(tokenId: string): Promise<TokenCredential | null> {
    const row = this.sql.credential.get(parseOrThrow(Id, tokenId, 'credential tokenId')) as { id: string; hash: string; revoked_at: string | null; user_id: string } | undefined;
    return row === undefined ? null : { tokenId: row.id, hash: row.hash, revoked: row.revoked_at !== null, userId: row.user_id };
  }

  async grantBlob(input: BlobGrantInputType): Promise<void> {
    const g = parseOrThrow(BlobGrantInput, input, 'grantBlob');
    this.write(() => this.sql.insertGrant.run({ ...g, now: this.timestamp() }));
  }

  /** Grants inside the caller's write transaction (the edit store's node inserts); idempotent. */
  grantNow(grants: readonly BlobGrantInputType[]): void {
    const now = this.timestamp();
    for (const grant of grants) this.sql.insertGrant.run({ ...grant, now });
  }

  async blobVisible(workspaceIds: readonly string[], sha256: string): Promise<boolean> {
    const sha = parseOrThrow(Sha256, sha256, 'blobVisible sha256');
    if (workspaceIds.length === 0) return false;
    return this.sql.grantIn.get({ sha256: sha, workspaces: JSON.stringify(workspaceIds) }) !== undefined;
  }

  async storedBytes(userId: string): Promise<number> {
    const row = this.sql.storedBytes.get(parseOrThrow(Id, userId, 'storedBytes userId')) as { bytes: number | null };
    return row.bytes ?? 0;
  }

  private timestamp(): string {
    return this.now().toISOString();
  }
}

function prepareStatements(db: Database.Database) {
  return {
    insertWorkspace: db.prepare('INSERT INTO workspaces (id, name, created_at) VALUES (@id, @name, @now)'),
    workspace: db.prepare('SELECT * FROM workspaces WHERE id = ?'),
    workspaceByName: db.prepare('SELECT * FROM workspaces WHERE name = ?'),
    workspaceSummaries: db.prepare(
      `SELECT w.*,
         (SELECT count(*) FROM memberships m WHERE m.workspace_id = w.id) AS members,
         (SELECT count(*) FROM documents d WHERE d.workspace_id = w.id) AS documents,
         (SELECT count(*) FROM jobs j JOIN documents d ON d.id = j.document_id WHERE d.workspace_id = w.id) AS jobs,
         (SELECT count(*) FROM blob_grants g WHERE g.workspace_id = w.id) AS blobs,
         (SELECT coalesce(sum(size), 0) FROM blob_grants g WHERE g.workspace_id = w.id) AS blob_bytes
       FROM workspaces w ORDER BY w.rowid`,
    ),

    insertUser: db.prepare(
      `INSERT INTO users (id, name, role, disabled, default_workspace_id, created_at) VALUES (@id, @name, @role, 0, @workspaceId, @now)`,
    ),
    user: db.prepare('SELECT * FROM users WHERE id = ?'),
    userByName: db.prepare('SELECT * FROM users WHERE name = ?'),
    userSummaries: db.prepare(
      `SELECT u.*,
         (SELECT json_group_array(name) FROM (SELECT w.name FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
            WHERE m.user_id = u.id ORDER BY m.rowid)) AS workspace_names,
         (SELECT count(*) FROM tokens t WHERE t.user_id = u.id AND t.revoked_at IS NULL) AS active_tokens
       FROM users u ORDER BY u.rowid`,
    ),
    setDisabled: db.prepare('UPDATE users SET disabled = @disabled WHERE id = @id'),
    insertMembership: db.prepare(
      `INSERT INTO memberships (user_id, workspace_id, created_at) VALUES (@userId, @workspaceId, @now) ON CONFLICT (user_id, workspace_id) DO NOTHING`,
    ),
    // the default workspace first, then the others in the order the user joined them
    workspacesOfUser: db.prepare(
      `SELECT w.* FROM memberships m JOIN workspaces w ON w.id = m.workspace_id JOIN users u ON u.id = m.user_id
       WHERE m.user_id = ? ORDER BY (w.id = u.default_workspace_id) DESC, m.rowid`,
    ),

    insertToken: db.prepare('INSERT INTO tokens (id, user_id, name, hash, created_at) VALUES (@id, @userId, @name, @hash, @now)'),
    token: db.prepare('SELECT * FROM tokens WHERE id = ?'),
    tokensOfUser: db.prepare('SELECT * FROM tokens WHERE user_id = ? ORDER BY seq'),
    activeTokenByName: db.prepare('SELECT * FROM tokens WHERE user_id = @userId AND name = @name AND revoked_at IS NULL'),
    revokeToken: db.prepare('UPDATE tokens SET revoked_at = coalesce(revoked_at, @now) WHERE id = @id'),
    credential: db.prepare('SELECT id, hash, revoked_at, user_id FROM tokens WHERE id = ?'),

    insertGrant: db.prepare(
      `INSERT INTO blob_grants (workspace_id, sha256, size, user_id, created_at) VALUES (@workspaceId, @sha256, @size, @userId, @now)
       ON CONFLICT (workspace_id, sha256) DO NOTHING`,
    ),
    grantIn: db.prepare('SELECT 1 FROM blob_grants WHERE sha256 = @sha256 AND workspace_id IN (SELECT value FROM json_each(@workspaces)) LIMIT 1'),
    storedBytes: db.prepare('SELECT sum(size) AS bytes FROM blob_grants WHERE user_id = ?'),
  };
}
