/**
 * The AccountStore contract: users, workspaces, memberships, personal API tokens and which workspace may read
 * which blob. Both SQL edit stores implement it on their own connection (sqlite-accounts.ts, postgres-accounts.ts)
 * and expose it as `edits.accounts`, so one database holds a document and the workspace it belongs to.
 *
 * Isolation is by workspace: a document belongs to one, every member of it sees and continues its history; a
 * blob is readable by a workspace that uploaded it or produced it (a grant row, written by uploads and by the
 * nodes that reference it). Tokens are stored only as a slow hash (server/auth/tokens.ts makes and checks them).
 *
 * The default user and workspace exist in every store (the migrations create them): the single shared-token
 * mode and the token-less loopback mode act as that user, so a store used without accounts behaves as before.
 */
import { z } from 'zod';
import { Id, Sha256 } from './store';

export const DEFAULT_WORKSPACE_NAME = 'default';
export const DEFAULT_USER_NAME = 'local';

export const ROLES = ['admin', 'member'] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/** User, workspace and token names: short, printable, usable on a command line without quoting. */
export const AccountName = z
  .string()
  .min(1, { error: 'a name must not be empty' })
  .max(64, { error: 'a name must be at most 64 characters' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*$/, { error: 'a name may hold letters, digits and . _ @ - (starting with a letter or digit)' });

export interface Workspace {
  id: string;
  name: string;
  createdAt: string;
}

/** What an admin sees of a workspace: its size, not its contents. */
export interface WorkspaceSummary extends Workspace {
  members: number;
  documents: number;
  jobs: number;
  blobs: number;
  blobBytes: number;
}

export interface User {
  id: string;
  name: string;
  role: Role;
  disabled: boolean;
  /** the workspace new documents and uploads go to when a request names none */
  defaultWorkspaceId: string;
  createdAt: string;
}

export interface UserSummary extends User {
  /** names of the workspaces the user is a member of */
  workspaces: string[];
  /** tokens not revoked */
  activeTokens: number;
}

/** A token as listed: never its secret or hash. */
export interface TokenRecord {
  id: string;
  userId: string;
  name: string;
  createdAt: string;
  revokedAt: string | null;
}

/** Who a request acts as: the user and the workspaces it may see. */
export interface Principal {
  user: User;
  /** every workspace the user is a member of, the default one first */
  workspaces: Workspace[];
}

/** What checking a presented token needs: its hash, whether it still counts, and whom it stands for. */
export interface TokenCredential {
  tokenId: string;
  hash: string;
  revoked: boolean;
  userId: string;
}

export const CreateUserInput = z.strictObject({
  name: AccountName,
  role: Role.default('member'),
  workspaceId: Id,
});
export type CreateUserInput = z.input<typeof CreateUserInput>;

export const CreateTokenInput = z.strictObject({
  id: Id,
  userId: Id,
  name: AccountName,
  /** the slow hash of the token's secret (server/auth/tokens.ts), never the secret */
  hash: z.string().min(16).max(512),
});
export type CreateTokenInput = z.input<typeof CreateTokenInput>;

export const BlobGrantInput = z.strictObject({
  workspaceId: Id,
  sha256: Sha256,
  size: z.number().int().min(0),
  /** who brought the blob into the workspace (per-user storage quota) */
  userId: Id,
});
export type BlobGrantInput = z.input<typeof BlobGrantInput>;

export interface AccountStore {
  createWorkspace(name: string): Promise<Workspace>;
  getWorkspace(id: string): Promise<Workspace | null>;
  workspaceByName(name: string): Promise<Workspace | null>;
  listWorkspaces(): Promise<WorkspaceSummary[]>;

  /** A new user, member of `workspaceId` (its default workspace). A taken name is StoreError('invalid_input'). */
  createUser(input: CreateUserInput): Promise<User>;
  getUser(id: string): Promise<User | null>;
  userByName(name: string): Promise<User | null>;
  listUsers(): Promise<UserSummary[]>;
  /** A disabled user's tokens are refused at once (the next request, and open streams at their next check). */
  setUserDisabled(userId: string, disabled: boolean): Promise<User>;
  /** Idempotent. */
  addMember(userId: string, workspaceId: string): Promise<void>;
  /** The user and its workspaces; null for an unknown or disabled user. */
  principal(userId: string): Promise<Principal | null>;

  /** A taken name among the user's tokens that are not revoked is StoreError('invalid_input'). */
  createToken(input: CreateTokenInput): Promise<TokenRecord>;
  /** in creation order, revoked ones included */
  listTokens(userId: string): Promise<TokenRecord[]>;
  /** By id, or by name among the user's active tokens. Revoking twice is allowed (the first time stands). */
  revokeToken(selector: { tokenId: string } | { userId: string; name: string }): Promise<TokenRecord>;
  credential(tokenId: string): Promise<TokenCredential | null>;

  /** Idempotent: the first grant's user and size stand. */
  grantBlob(input: BlobGrantInput): Promise<void>;
  /** Whether any of these workspaces uploaded or produced the blob. */
  blobVisible(workspaceIds: readonly string[], sha256: string): Promise<boolean>;
  /** Bytes of the blobs this user brought into its workspaces (each grant counted once). */
  storedBytes(userId: string): Promise<number>;
}
