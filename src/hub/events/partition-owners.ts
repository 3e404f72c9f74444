// Event Hubs' owner level ("epoch"): within a consumer group, a partition reader that attaches with
// an owner level disconnects the readers it outranks (those without one, or with a level not above
// its own), and a reader outranked by one already there is refused. EventHubConsumerClient with a
// checkpoint store attaches with owner level 0 and relies on this to take a partition over.

export interface OwnedReader {
  ownerLevel: number | undefined;
  /** Detaches the reader with amqp:link:stolen and this description. */
  disconnect(description: string): void;
}

export class PartitionOwners {
  private readonly readers = new Map<string, Set<OwnedReader>>();

  /** Admits a reader of `groupPartition`; returns why it is refused, if it is. */
  admit(groupPartition: string, reader: OwnedReader): string | undefined {
    const current = this.readers.get(groupPartition) ?? new Set<OwnedReader>();
    const levels = [...current].flatMap((r) => (r.ownerLevel === undefined ? [] : [r.ownerLevel]));
    const top = levels.length > 0 ? Math.max(...levels) : undefined;
    if (top !== undefined && (reader.ownerLevel === undefined || reader.ownerLevel < top)) {
      return `A receiver with epoch '${top}' already exists on this partition and consumer group; ` +
        `a receiver ${reader.ownerLevel === undefined ? 'without an epoch' : `with epoch '${reader.ownerLevel}'`} cannot be created.`;
    }
    if (reader.ownerLevel !== undefined) {
      for (const other of current) {
        other.disconnect(`New receiver with higher epoch of '${reader.ownerLevel}' is created hence current receiver ` +
          `${other.ownerLevel === undefined ? 'without an epoch' : `with epoch '${other.ownerLevel}'`} is getting disconnected.`);
        current.delete(other);
      }
    }
    current.add(reader);
    this.readers.set(groupPartition, current);
    return undefined;
  }

  release(groupPartition: string, reader: OwnedReader): void {
    const current = this.readers.get(groupPartition);
    current?.delete(reader);
    if (current?.size === 0) this.readers.delete(groupPartition);
  }
}
