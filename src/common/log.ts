/** Structured logging (pino). Secrets never go into a log line: tokens and keys are redacted by path. */
import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

export type { Logger };

/** Log levels accepted by --log-level. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Log formats accepted by --log-format: one JSON object a line, or pino-pretty's text for people. */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The format to write: the one asked for, else pretty on a terminal and JSON for pipes, files and journald. */
export function chooseLogFormat(asked: LogFormat | null, stderrIsTTY: boolean): LogFormat {
  return asked ?? (stderrIsTTY ? 'pretty' : 'json');
}

/** Where and how a logger writes; the default is JSON to stderr. */
export interface LogOutput {
  format?: LogFormat;
  /** Default: stderr, written asynchronously and flushed at exit by pino. */
  destination?: NodeJS.WritableStream;
  /** Colours in the pretty format (default: when stderr is a terminal). */
  colorize?: boolean;
}

/** A logger writing to stderr (or to `output.destination`) in the format asked for. */
export function createLogger(level: LogLevel, name: string, output: LogOutput = {}): Logger {
  const destination: Flushable = output.destination ?? pino.destination({ fd: 2, sync: false });
  return pino(
    {
      name,
      level,
      base: undefined,
      redact: { paths: ['token', 'secret', 'privateKey', '*.token', '*.secret', '*.privateKey'], censor: '[redacted]' },
    },
    output.format === 'pretty' ? prettyStream(destination, output.colorize ?? process.stderr.isTTY === true) : destination,
  );
}

/**
 * Turns each JSON line into pino-pretty's text in this thread, before it reaches the
 * destination: unlike pino's worker-thread transport, nothing is left in another thread
 * when the process exits, and flush() reaches the real destination.
 */
function prettyStream(destination: Flushable, colorize: boolean): DestinationStream {
  const pretty = prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  return {
    write: (line: string) => destination.write(pretty(line)),
    flush: (cb?: (err?: Error) => void) => (destination.flush ? destination.flush(cb) : cb?.()),
  } as DestinationStream;
}

/** A stream pino can write to, with the flush() that SonicBoom has and a plain Writable lacks. */
type Flushable = { write(s: string): unknown; flush?: (cb?: (err?: Error) => void) => void };

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
