/**
 * Structured logging with pino: one JSON object per line ({level, time, pid, msg, ...fields}) on stderr by
 * default (stdout carries only the server's `layerloop listening on ...` line). Created once in main.ts and
 * passed down; `child` adds fields to every line it writes (a request id, a job id).
 *
 * The interface is ours, not pino's, so callers write `log.info(message, fields)` and tests can capture lines
 * with `createLogger({ write })`.
 */
import pino from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** where each line goes (default: stderr, written synchronously so nothing is lost on exit) */
  write?: (line: string) => void;
  level?: LogLevel;
  /** fields on every line */
  fields?: LogFields;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  let destination: pino.DestinationStream;
  if (opts.write) {
    const write = opts.write;
    destination = { write: (line: string) => write(line) };
  } else {
    const stderr = pino.destination({ dest: 2, sync: true });
    stderr.on('error', () => {}); // a closed stderr (EPIPE) must not take the server down
    destination = stderr;
  }
  const root = pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return wrap(opts.fields ? root.child(opts.fields) : root);
}

function wrap(p: pino.Logger): Logger {
  const at =
    (level: LogLevel) =>
    (msg: string, fields?: LogFields): void => {
      try {
        if (fields) p[level](fields, msg);
        else p[level](msg);
      } catch {
        // a failing log write must not take the server down
      }
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => wrap(p.child(fields)),
  };
}
