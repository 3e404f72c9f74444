/**
 * Commits appends together: what arrives in the same turn of the event loop, and everything that
 * arrives while a commit is in flight, goes into the next commit (one transaction, one fsync, for
 * many publishes). One commit at a time. Each caller is settled once its commit has happened: a
 * device is acknowledged only for what is on disk, and a failed commit acknowledges nothing of it.
 */
export class GroupCommit<T, R> {
  private pending: Array<{ items: T[]; resolve: (results: R[]) => void; reject: (err: unknown) => void }> = [];
  private committing = false;

  /**
   * `commit` returns one result per item, in order; `committed` sees each commit's results before
   * its callers do.
   */
  constructor(
    private readonly commit: (items: T[]) => Promise<R[]>,
    private readonly committed: (results: R[]) => void = () => {},
  ) {}

  add(items: T[]): Promise<R[]> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ items, resolve, reject }) === 1 && !this.committing) setImmediate(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.committing = true;
    let results: R[];
    try {
      results = await this.commit(batch.flatMap((p) => p.items));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    } finally {
      this.committing = false;
      // The next batch goes to disk first, then this one is delivered: the commit is the slow part.
      if (this.pending.length > 0) void this.flush();
    }
    this.committed(results);
    let at = 0;
    for (const p of batch) p.resolve(results.slice(at, (at += p.items.length)));
  }
}
