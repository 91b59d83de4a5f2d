/**
 * Structured logging: one JSON object per line ({time, level, msg, ...fields}) on a stream (stderr by
 * default). Created once in main.ts and passed down; `child` adds fields (a request id, a job id).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(opts: { write?: (line: string) => void; level?: LogLevel; fields?: LogFields } = {}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const min = ORDER[opts.level ?? 'info'];
  const base = opts.fields ?? {};
  const at =
    (level: LogLevel) =>
    (msg: string, fields: LogFields = {}): void => {
      if (ORDER[level] < min) return;
      try {
        write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields })}\n`);
      } catch {
        // a closed stderr must not take the server down
      }
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => createLogger({ write, level: opts.level, fields: { ...base, ...fields } }),
  };
}
