/**
 * Commits appends together: what arrives in the same turn of the event loop, and everything that
 * arrives while a commit is in flight, goes into the next commit (one transaction, one fsync, for
 * many publishes). One commit at a time. Each caller is settled once its commit has happened: a
 * device is acknowledged only for what is on disk, and a failed commit acknowledges nothing of it.
 * Items added in one synchronous run always share a commit.
 */
export class GroupCommit<T, R> {
  private items: T[] = [];
  private settlers: Array<{ resolve: (result: R) => void; reject: (err: unknown) => void }> = [];
  private committing = false;

  /**
   * `commit` returns one result per item, in order; `committed` sees each commit's results before
   * its callers do.
   */
  constructor(
    private readonly commit: (items: T[]) => Promise<R[]>,
    private readonly committed: (results: R[]) => void = () => {},
  ) {}

  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.settlers.push({ resolve, reject });
      if (this.items.push(item) === 1 && !this.committing) setImmediate(() => this.flush());
    });
  }

  private async flush(): Promise<void> {
    const { items, settlers } = this;
    this.items = [];
    this.settlers = [];
    this.committing = true;
    let results: R[];
    try {
      results = await this.commit(items);
    } catch (err) {
      for (const settler of settlers) settler.reject(err);
      return;
    } finally {
      this.committing = false;
      // The next batch goes to disk first, then this one is delivered: the commit is the slow part.
      if (this.items.length > 0) void this.flush();
    }
    this.committed(results);
    for (let i = 0; i < settlers.length; i++) settlers[i]!.resolve(results[i]!);
  }
}
