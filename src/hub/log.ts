// The hub's log: one line per event worth a user's attention, to stderr or a file. Lines below the
// level are dropped before they are formatted, so a debug line on a hot path costs one comparison.

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The part of the hub a line comes from. */
export type LogArea = 'hub' | 'rest' | 'mqtt' | 'amqp' | 'store' | 'auth';

export interface HubLog {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  error(area: LogArea, message: string): void;
  warn(area: LogArea, message: string): void;
  info(area: LogArea, message: string): void;
  debug(area: LogArea, message: string): void;
}

/** Keys, signatures and connection-string secrets in `text`, masked. */
export function maskSecrets(text: string): string {
  return text
    .replace(/(SharedAccessKey=)[^;\s"]+/gi, '$1***')
    .replace(/([?&\s]sig=)[^&\s"]+/gi, '$1***')
    .replace(/("(?:primaryKey|secondaryKey)"\s*:\s*")[^"]*/g, '$1***');
}

/** A log that writes `write(line)` for each line at or above `level` (secrets masked). */
export function createLog(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(line)): HubLog {
  const rank = LOG_LEVELS.indexOf(level);
  const enabled = (at: LogLevel) => LOG_LEVELS.indexOf(at) <= rank;
  const emit = (at: LogLevel) => (area: LogArea, message: string) => {
    if (enabled(at)) write(`${new Date().toISOString()} ${at.padEnd(5)} ${area}: ${maskSecrets(message)}\n`);
  };
  return { level, enabled, error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug') };
}

/** A log that drops everything (tests and the in-process demo hub, unless they ask for one). */
export const silentLog: HubLog = createLog('error', () => undefined);
