/**
 * Shares the event loop fairly between connections, without a rate limit: each connection's requests
 * run for at most `budgetMs` per turn of the event loop; the rest wait, in order, for the next turn,
 * after every other connection's I/O has been read. A client that writes thousands of requests in
 * one go gets them all handled, as fast as before when it is alone, but one turn's budget at a time
 * (aedes hands over every request of a socket read at once, and a twin update is a synchronous,
 * fsync'd write: without this, one socket read of hundreds of patches held everyone else for seconds).
 */
export class TurnBudget<K extends object> {
  /** Milliseconds each connection has used in this turn. */
  private readonly used = new Map<K, number>();
  /** Requests over budget, per connection, oldest first. */
  private readonly waiting = new Map<K, Array<() => void>>();
  private turnScheduled = false;

  constructor(private readonly budgetMs: number) {}

  /** Runs `job` (which must not throw) now if `key` has budget left in this turn and nothing waiting; later otherwise. */
  run(key: K, job: () => void): void {
    const queue = this.waiting.get(key);
    if (queue) queue.push(job);
    else if ((this.used.get(key) ?? 0) < this.budgetMs) this.timed(key, job);
    else this.waiting.set(key, [job]);
    this.scheduleTurn();
  }

  /** Forgets what a closed connection left waiting. */
  drop(key: K): void {
    this.waiting.delete(key);
    this.used.delete(key);
  }

  private timed(key: K, job: () => void): void {
    const start = performance.now();
    try {
      job();
    } finally {
      this.used.set(key, (this.used.get(key) ?? 0) + performance.now() - start);
    }
  }

  /** The next turn starts in setImmediate's phase, after the poll phase has read every socket. */
  private scheduleTurn(): void {
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    this.turnScheduled = false;
    this.used.clear();
    for (const [key, queue] of this.waiting) {
      let next = 0;
      // A job may close its own connection (drop): then the rest of its queue is dropped with it.
      while (next < queue.length && this.waiting.get(key) === queue && (this.used.get(key) ?? 0) < this.budgetMs) {
        this.timed(key, queue[next++]!);
      }
      queue.splice(0, next);
      if (queue.length === 0) this.waiting.delete(key);
    }
    if (this.waiting.size > 0) this.scheduleTurn();
  };
}
