/** Structured logging (pino). Secrets never go into a log line: tokens and keys are redacted by path. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Log levels accepted by --log-level. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A logger writing JSON lines to stderr (or to `destination` when given). */
export function createLogger(level: LogLevel, name: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      name,
      level,
      base: undefined,
      redact: { paths: ['token', 'secret', 'privateKey', '*.token', '*.secret', '*.privateKey'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
