import type { ServerResponse } from 'node:http';

/** A page's stream of server-sent events, with the session it belongs to. */
interface Listener {
  res: ServerResponse;
  sessionId: string;
  expiresAtMs: number;
}

const HEARTBEAT_MS = 15_000;
/** A page that reads slower than the hub writes is cut off beyond this much unsent; its EventSource reconnects and starts afresh. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * Live updates for the open pages, as server-sent events: one-way, over the same HTTPS connection
 * and cookie as everything else, reconnected by the browser's EventSource on its own.
 */
export class LiveStream {
  private readonly listeners = new Set<Listener>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly onCountChange: (count: number) => void) {
    // A comment line now and then: proxies and the browser see a live connection, and a dead one is
    // noticed. A stream whose session has expired ends there.
    this.heartbeat = setInterval(() => {
      for (const listener of this.listeners) if (listener.expiresAtMs <= Date.now()) this.end(listener);
      this.write(': ping\n\n');
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.listeners.size;
  }

  /** Takes over a response as an event stream, and sends `initial` first. */
  open(res: ServerResponse, session: { id: string; expiresAtMs: number }, initial: Array<[event: string, data: unknown]>): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    const listener = { res, sessionId: session.id, expiresAtMs: session.expiresAtMs };
    this.listeners.add(listener);
    res.on('close', () => {
      this.listeners.delete(listener);
      this.onCountChange(this.listeners.size);
    });
    for (const [event, data] of initial) res.write(frame(event, data));
    this.onCountChange(this.listeners.size);
  }

  send(event: string, data: unknown): void {
    if (this.listeners.size > 0) this.write(frame(event, data));
  }

  /** Ends the streams of one session (signed out). */
  closeSession(sessionId: string): void {
    for (const listener of this.listeners) if (listener.sessionId === sessionId) this.end(listener);
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const listener of this.listeners) this.end(listener);
  }

  private end(listener: Listener): void {
    this.listeners.delete(listener);
    listener.res.end();
    this.onCountChange(this.listeners.size);
  }

  private write(text: string): void {
    for (const listener of this.listeners) {
      if (listener.res.writableLength <= MAX_BUFFERED_BYTES) listener.res.write(text);
      else {
        this.listeners.delete(listener);
        listener.res.destroy();
      }
    }
  }
}

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
