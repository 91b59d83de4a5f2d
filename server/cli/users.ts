/**
 * The admin CLI for users, workspaces and personal tokens (built to dist/cli/users.js):
 *
 *   npm run users -- add NAME --workspace W [--admin]   a user (and W, if new); prints its first token last
 *   npm run users -- users list | disable NAME | enable NAME | join NAME --workspace W
 *   npm run users -- tokens create USER [--name N] | list USER | revoke USER (NAME | --id ID)
 *   npm run users -- workspaces add NAME | list
 *
 * It opens the same store as the server: --data-dir DIR (LAYERLOOP_DATA_DIR, default <repo>/data) for the
 * embedded SQLite one, --store postgres://… (LAYERLOOP_STORE) for PostgreSQL. Safe while the server runs: a
 * revoked token or a disabled user is refused by the server's very next request. A token is printed once, here;
 * the store keeps only its scrypt hash.
 * Exit status: 0 done, 1 refused (an unknown user, a taken name…) or the store cannot be opened, 2 bad usage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { hashTokenSecret, newToken } from '../auth/tokens';
import { findRepoRoot } from '../config';
import { type AccountStore, DATABASE_FILE, type EditStore, FsBlobStore, SqliteEditStore, StoreError, type User, type Workspace } from '../store';
import { StoreUrlError, parseStoreUrl } from '../store/urls';

export const USAGE = `usage: npm run users -- COMMAND [--data-dir DIR | --store postgres://…]
  add NAME --workspace W [--admin]        a new user in workspace W (made if new); prints its first token last
  users list                              every user, role, state, workspaces and active tokens
  users disable NAME | users enable NAME  a disabled user's tokens are refused at once
  users join NAME --workspace W           NAME becomes a member of W too
  tokens create USER [--name N]           another token for USER (default name: token-<n>); printed once
  tokens list USER                        USER's tokens (names, ids, when made and revoked; never secrets)
  tokens revoke USER NAME | tokens revoke USER --id ID
  workspaces add NAME | workspaces list   (list counts members, documents, jobs and stored blobs)
The store: --data-dir DIR (LAYERLOOP_DATA_DIR, default <repo>/data) or --store URL (LAYERLOOP_STORE), as the server.`;

class UsageError extends Error {}

const OPTIONS = {
  'data-dir': { type: 'string' },
  store: { type: 'string' },
  workspace: { type: 'string' },
  admin: { type: 'boolean' },
  name: { type: 'string' },
  id: { type: 'string' },
  help: { type: 'boolean' },
} as const;

interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** Rows as aligned columns. */
function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
}

async function openEdits(values: { 'data-dir'?: string; store?: string }, env: NodeJS.ProcessEnv): Promise<EditStore & { close(): Promise<void> | void }> {
  const storeUrl = values.store ?? (env.LAYERLOOP_STORE?.trim() || undefined);
  if (storeUrl) {
    let location;
    try {
      location = parseStoreUrl(storeUrl);
    } catch (e) {
      if (e instanceof StoreUrlError) throw new UsageError(e.message);
      throw e;
    }
    const { PostgresEditStore } = require('../store/postgres') as typeof import('../store/postgres');
    // accounts never read blobs: a blob store that is never touched stands in for the server's
    return PostgresEditStore.open(location.url, new FsBlobStore(path.join(findRepoRoot(__dirname), 'data', 'blobs')), { maxConnections: 2 });
  }
  const dataDir = path.resolve(values['data-dir'] ?? (env.LAYERLOOP_DATA_DIR?.trim() || path.join(findRepoRoot(__dirname), 'data')));
  fs.mkdirSync(dataDir, { recursive: true });
  return new SqliteEditStore(path.join(dataDir, DATABASE_FILE), new FsBlobStore(path.join(dataDir, 'blobs')));
}

async function requireUser(accounts: AccountStore, name: string | undefined): Promise<User> {
  if (!name) throw new UsageError('name the user');
  const user = await accounts.userByName(name);
  if (!user) throw new StoreError('not_found', `no user named '${name}' (npm run users -- users list shows them)`);
  return user;
}

async function requireWorkspace(accounts: AccountStore, name: string | undefined): Promise<Workspace> {
  if (!name) throw new UsageError('name the workspace with --workspace W');
  const workspace = await accounts.workspaceByName(name);
  if (!workspace) throw new StoreError('not_found', `no workspace named '${name}' (npm run users -- workspaces list shows them)`);
  return workspace;
}

/** A new token for `user`: stored as its hash; the text is returned to be printed once. */
async function issueToken(accounts: AccountStore, user: User, name: string | undefined): Promise<string> {
  const taken = new Set((await accounts.listTokens(user.id)).filter((t) => t.revokedAt === null).map((t) => t.name));
  let chosen = name;
  for (let n = taken.size + 1; chosen === undefined; n++) if (!taken.has(`token-${n}`)) chosen = `token-${n}`;
  const token = newToken();
  await accounts.createToken({ id: token.id, userId: user.id, name: chosen, hash: await hashTokenSecret(token.secret) });
  return token.text;
}

async function run(command: string[], values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'], accounts: AccountStore, io: Io): Promise<void> {
  const [group, verb, ...args] = command[0] === 'add' ? ['users', ...command] : command;
  const arg = (i: number): string | undefined => args[i];
  const noMore = (n: number) => {
    if (args.length > n) throw new UsageError(`unexpected ${args.slice(n).join(' ')}`);
  };
  switch (`${group} ${verb}`) {
    case 'users add': {
      noMore(1);
      const name = arg(0);
      if (!name) throw new UsageError('name the user: add NAME --workspace W');
      if (!values.workspace) throw new UsageError('say which workspace the user works in: add NAME --workspace W');
      let workspace = await accounts.workspaceByName(values.workspace);
      if (!workspace) {
        workspace = await accounts.createWorkspace(values.workspace);
        io.err(`made workspace '${workspace.name}'`);
      }
      const user = await accounts.createUser({ name, role: values.admin ? 'admin' : 'member', workspaceId: workspace.id });
      const token = await issueToken(accounts, user, values.name ?? 'first');
      io.err(`made ${user.role} '${user.name}' in workspace '${workspace.name}'; the token below is shown once: hand it to ${user.name} (Settings > Token in the plugins)`);
      io.out(token);
      return;
    }
    case 'users list': {
      noMore(0);
      const users = await accounts.listUsers();
      const rows = users.map((u) => [u.name, u.role, u.disabled ? 'disabled' : 'active', String(u.activeTokens), u.workspaces.join(',')]);
      for (const line of table([['NAME', 'ROLE', 'STATE', 'TOKENS', 'WORKSPACES'], ...rows])) io.out(line);
      return;
    }
    case 'users disable':
    case 'users enable': {
      noMore(1);
      const user = await requireUser(accounts, arg(0));
      await accounts.setUserDisabled(user.id, verb === 'disable');
      io.out(`${verb}d '${user.name}'${verb === 'disable' ? ': the server refuses its tokens from the next request on (open streams end within a second)' : ''}`);
      return;
    }
    case 'users join': {
      noMore(1);
      const user = await requireUser(accounts, arg(0));
      const workspace = await requireWorkspace(accounts, values.workspace);
      await accounts.addMember(user.id, workspace.id);
      io.out(`'${user.name}' is a member of '${workspace.name}'`);
      return;
    }
    case 'tokens create': {
      noMore(1);
      const user = await requireUser(accounts, arg(0));
      const token = await issueToken(accounts, user, values.name);
      io.err(`the token below is shown once: hand it to ${user.name}`);
      io.out(token);
      return;
    }
    case 'tokens list': {
      noMore(1);
      const user = await requireUser(accounts, arg(0));
      const rows = (await accounts.listTokens(user.id)).map((t) => [t.name, t.id, t.createdAt, t.revokedAt ?? 'active']);
      for (const line of table([['NAME', 'ID', 'CREATED', 'REVOKED'], ...rows])) io.out(line);
      return;
    }
    case 'tokens revoke': {
      const user = await requireUser(accounts, arg(0));
      if (values.id !== undefined) noMore(1);
      else noMore(2);
      const name = arg(1);
      if (values.id === undefined && !name) throw new UsageError('say which token: tokens revoke USER NAME, or tokens revoke USER --id ID');
      if (values.id !== undefined) {
        const mine = (await accounts.listTokens(user.id)).some((t) => t.id === values.id);
        if (!mine) throw new StoreError('not_found', `'${user.name}' has no token ${values.id}`);
      }
      const revoked = await accounts.revokeToken(values.id !== undefined ? { tokenId: values.id } : { userId: user.id, name: name! });
      io.out(`revoked token '${revoked.name}' of '${user.name}' (${revoked.id}): refused from the next request on`);
      return;
    }
    case 'workspaces add': {
      noMore(1);
      if (!arg(0)) throw new UsageError('name the workspace: workspaces add NAME');
      const workspace = await accounts.createWorkspace(arg(0)!);
      io.out(`made workspace '${workspace.name}' (${workspace.id})`);
      return;
    }
    case 'workspaces list': {
      noMore(0);
      const rows = (await accounts.listWorkspaces()).map((w) => [w.name, w.id, String(w.members), String(w.documents), String(w.jobs), String(w.blobs), String(w.blobBytes)]);
      for (const line of table([['NAME', 'ID', 'MEMBERS', 'DOCUMENTS', 'JOBS', 'BLOBS', 'BYTES'], ...rows])) io.out(line);
      return;
    }
    default:
      throw new UsageError(`unknown command '${command.join(' ')}'`);
  }
}

export async function usersCli(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    io.err(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help || parsed.positionals.length === 0) {
    io.err(USAGE);
    return parsed.values.help ? 0 : 2;
  }
  let edits: Awaited<ReturnType<typeof openEdits>>;
  try {
    edits = await openEdits(parsed.values, env);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${e.message}\n${USAGE}`);
      return 2;
    }
    io.err(`FAILED: cannot open the store: ${(e as Error).message}`);
    return 1;
  }
  try {
    await run(parsed.positionals, parsed.values, edits.accounts, io);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${e.message}\n${USAGE}`);
      return 2;
    }
    if (e instanceof StoreError) {
      io.err(`FAILED: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    await edits.close();
  }
}

if (require.main === module) {
  usersCli(process.argv.slice(2), process.env, { out: (line) => process.stdout.write(`${line}\n`), err: (line) => process.stderr.write(`${line}\n`) }).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
