import { ExitCode, ToolkitError } from '../clients/errors.js';

export interface ReceivingBounds {
  /** Done once this many have arrived; absent: until aborted or timed out. */
  count?: number;
  /** Fails (ExitCode.timeout) when they have not all arrived in time. */
  timeoutSeconds?: number;
  /** Aborting ends the wait with what has arrived. */
  signal?: AbortSignal;
}

/**
 * The wait of a receiving device app (twin patches, cloud-to-device messages): counts what arrives
 * and ends when `count` have, when the time-out passes, when `signal` aborts, or with the first error.
 * `done` settles then; `dispose` lets go of the timer and the signal.
 */
export class Receiving {
  received = 0;
  readonly done: Promise<void>;
  private finish!: () => void;
  private failWith!: (err: unknown) => void;
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly onAbort = () => this.finish();

  /** `what`: what arrives, in the singular ('desired property patch'), for the time-out's message. */
  constructor(
    what: string,
    private readonly bounds: ReceivingBounds,
  ) {
    this.done = new Promise<void>((resolve, reject) => ((this.finish = resolve), (this.failWith = reject)));
    this.done.catch(() => undefined); // a failure during set-up is reported by the step that awaits it
    const { timeoutSeconds, signal } = bounds;
    if (timeoutSeconds !== undefined) {
      const timedOut = () =>
        new ToolkitError(
          `no${this.received ? ' further' : ''} ${what} within ${timeoutSeconds} s (received ${this.received})`,
          ExitCode.timeout,
        );
      this.timer = setTimeout(() => this.failWith(timedOut()), timeoutSeconds * 1000);
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    if (signal?.aborted) this.finish();
  }

  /** One more has arrived. */
  got(): void {
    this.received += 1;
    if (this.bounds.count !== undefined && this.received >= this.bounds.count) this.finish();
  }

  get complete(): boolean {
    return this.received >= (this.bounds.count ?? Infinity);
  }

  fail(err: unknown): void {
    this.failWith(err);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.bounds.signal?.removeEventListener('abort', this.onAbort);
  }
}
