/**
 * Commits what arrives in the same turn of the event loop together (one transaction, one fsync,
 * for many publishes), and settles each caller only once that commit has happened: a device is
 * acknowledged only for what is on disk, and a failed commit acknowledges nothing of it.
 */
export class GroupCommit<T> {
  private pending: Array<{ item: T; resolve: () => void; reject: (err: unknown) => void }> = [];

  constructor(private readonly commit: (items: T[]) => void) {}

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ item, resolve, reject }) === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    try {
      this.commit(batch.map((p) => p.item));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    for (const p of batch) p.resolve();
  }
}
