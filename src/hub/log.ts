// The hub's log: one line per event worth a user's attention, to stderr or a file. Lines below the
// level are dropped before they are formatted, so a debug line on a hot path costs one comparison.
// The latest warnings and errors are also kept in memory, for the dashboard's hub view.

import { EventEmitter } from 'node:events';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The part of the hub a line comes from. */
export type LogArea = 'hub' | 'rest' | 'mqtt' | 'amqp' | 'store' | 'auth' | 'ui' | 'jobs' | 'routing';

export interface HubLog {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  error(area: LogArea, message: string): void;
  warn(area: LogArea, message: string): void;
  info(area: LogArea, message: string): void;
  debug(area: LogArea, message: string): void;
  /** The latest warn and error lines, whatever the level (they are rare, and the ones worth showing). */
  readonly recent: RecentLines;
}

/** One line of the log, as the dashboard shows it (secrets already masked). */
export interface LogLine {
  time: string;
  level: LogLevel;
  area: LogArea;
  message: string;
}

/** A bounded ring of log lines; emits 'line' for each one added. */
export class RecentLines extends EventEmitter<{ line: [LogLine] }> {
  private readonly ring: LogLine[] = [];

  constructor(readonly capacity = 50) {
    super();
    this.setMaxListeners(0); // one per dashboard of a hub using this log; several hubs may be given one log
  }

  add(line: LogLine): void {
    this.ring.push(line);
    if (this.ring.length > this.capacity) this.ring.shift();
    this.emit('line', line);
  }

  /** Oldest first. */
  lines(): LogLine[] {
    return [...this.ring];
  }
}

/** Keys, signatures and connection-string secrets in `text`, masked. */
export function maskSecrets(text: string): string {
  return text
    .replace(/((?:SharedAccessKey|AccountKey)=)[^;\s"]+/gi, '$1***')
    .replace(/([?&\s]sig=)[^&\s"]+/gi, '$1***')
    .replace(/("(?:primaryKey|secondaryKey)"\s*:\s*")[^"]*/g, '$1***');
}

/** A log that writes `write(line)` for each line at or above `level` (secrets masked). */
export function createLog(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(line)): HubLog {
  const rank = LOG_LEVELS.indexOf(level);
  const enabled = (at: LogLevel) => LOG_LEVELS.indexOf(at) <= rank;
  const recent = new RecentLines();
  const emit = (at: LogLevel) => (area: LogArea, message: string) => {
    const kept = at === 'error' || at === 'warn';
    if (!kept && !enabled(at)) return;
    const line: LogLine = { time: new Date().toISOString(), level: at, area, message: maskSecrets(message) };
    if (kept) recent.add(line);
    if (enabled(at)) write(`${line.time} ${at.padEnd(5)} ${area}: ${line.message}\n`);
  };
  return { level, enabled, error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug'), recent };
}

/** A log that writes nothing (tests and the in-process demo hub, unless they ask for one); each has its own recent lines. */
export function silentLog(): HubLog {
  return createLog('error', () => undefined);
}
