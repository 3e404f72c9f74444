/**
 * Method calls waiting (connectTimeoutInSeconds) for their identity to start listening on one
 * transport. The transport calls `changed()` whenever some identity may have started listening;
 * each waiting call then checks its own identity again.
 */
export class ListeningWaiters {
  private readonly checks = new Set<() => void>();

  changed(): void {
    for (const check of [...this.checks]) check();
  }

  /** Resolves true as soon as `isListening()` holds, false after timeoutMs or on abort. */
  wait(isListening: () => boolean, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => isListening() && done(true);
      const done = (listening: boolean) => {
        clearTimeout(timer);
        this.checks.delete(check);
        signal.removeEventListener('abort', abort);
        resolve(listening);
      };
      const abort = () => done(false);
      const timer = setTimeout(abort, timeoutMs);
      this.checks.add(check);
      signal.addEventListener('abort', abort);
      check();
    });
  }
}
