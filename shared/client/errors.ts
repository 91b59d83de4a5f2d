/**
 * The one error type of the layerloop client: what failed, said for the user, with what to do. Every call of the
 * client (shared/client/client.ts) throws only ClientError.
 */

export type ClientErrorKind =
  /** the request never got an answer (server down, wrong URL, blocked by the browser or the host) */
  | 'network'
  /** a missing or wrong token */
  | 'auth'
  /** the server does not know the job, document or edit (tRPC NOT_FOUND, HTTP 404) */
  | 'not-found'
  /** the queue is full or the server is shutting down: try again later */
  | 'busy'
  /** the server refused the request; its message says what to fix */
  | 'bad-request'
  | 'server'
  /** the caller's signal stopped it */
  | 'aborted'
  /** the answer is not what this client understands (versions differ) */
  | 'protocol';

export class ClientError extends Error {
  constructor(
    readonly kind: ClientErrorKind,
    message: string,
    /** the HTTP status, when there was one */
    readonly status: number | null = null,
    /** tRPC's error code (e.g. 'NOT_FOUND'), when the server sent one */
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ClientError';
  }
}

export function isAbortError(err: unknown): boolean {
  return (err instanceof ClientError && err.kind === 'aborted') || (err instanceof Error && err.name === 'AbortError');
}

export function aborted(): ClientError {
  return new ClientError('aborted', 'Cancelled.');
}

/**
 * The error for an answer with this status (null: no answer at all). `serverMessage` is the server's own text
 * (its 4xx messages already say what to fix); `networkHint` is the host's advice for a request that got no
 * answer (manifest domains, mixed content).
 */
export function errorForStatus(serverUrl: string, status: number | null, code: string | null, serverMessage: string | null, networkHint: string): ClientError {
  const said = serverMessage ? `: ${serverMessage}` : '';
  if (status === null) {
    return new ClientError('network', `Can't reach the layerloop server at ${serverUrl}${said}. Check that it is running and the URL in Settings${networkHint ? `; ${networkHint}` : ''}.`);
  }
  if (status === 401 || status === 403 || code === 'UNAUTHORIZED' || code === 'FORBIDDEN') {
    return new ClientError('auth', `The server at ${serverUrl} did not accept the token${said}. Paste your personal token (or the one the server was started with, --token / LAYERLOOP_TOKEN) into Settings.`, status, code);
  }
  if (status === 404 || code === 'NOT_FOUND') {
    return new ClientError('not-found', serverMessage ?? `${serverUrl} answered 404: is it a layerloop server? Check the URL in Settings.`, status, code);
  }
  if (status === 413) return new ClientError('bad-request', `The image is too large for the server${said}. Edit a smaller layer.`, status, code);
  if (status === 429) return new ClientError('busy', `The server's queue is full${said}. Wait for running edits to finish, then Apply again.`, status, code);
  if (status === 503) return new ClientError('busy', `The server is not taking edits right now${said}. Try again in a moment.`, status, code);
  // the server's disk, or the user's storage quota, is full: its message says which and what to do
  if (status === 507) return new ClientError('bad-request', serverMessage ?? `The server has no room to store this (HTTP 507).`, status, code);
  if (status >= 400 && status < 500) return new ClientError('bad-request', serverMessage ?? `The server refused the request (HTTP ${status}).`, status, code);
  return new ClientError('server', `The server failed (HTTP ${status})${said}. Its log says more; try again.`, status, code);
}
