// Who reads a partition within a consumer group, by Event Hubs' rules:
// - at most five readers without an owner level ("non-epoch" readers); a sixth is refused with
//   Event Hubs' quota error (amqp:resource-limit-exceeded, QuotaExceededError in the SDKs);
// - owner level ("epoch"): a reader that attaches with one disconnects the readers it outranks
//   (those without one, or with a level not above its own), and a reader outranked by one already
//   there is refused. EventHubConsumerClient with a checkpoint store attaches with owner level 0 and
//   relies on this to take a partition over. So there is never more than one reader with a level.

/** Event Hubs' quota of readers without an owner level per partition and consumer group. */
export const MAX_READERS_PER_PARTITION = 5;

export interface OwnedReader {
  ownerLevel: number | undefined;
  /** The reader's `com.microsoft:receiver-name` (the SDK's consumer id), named in the quota error. */
  name: string | undefined;
  /** Detaches the reader with amqp:link:stolen and this description. */
  disconnect(description: string): void;
}

export interface Refusal {
  condition: string;
  description: string;
}

export class PartitionOwners {
  private readonly readers = new Map<string, Set<OwnedReader>>();

  /** Admits a reader of `groupPartition`; returns why it is refused, if it is. */
  admit(groupPartition: string, reader: OwnedReader): Refusal | undefined {
    const current = this.readers.get(groupPartition) ?? new Set<OwnedReader>();
    const levels = [...current].flatMap((r) => (r.ownerLevel === undefined ? [] : [r.ownerLevel]));
    const top = levels.length > 0 ? Math.max(...levels) : undefined;
    if (top !== undefined && (reader.ownerLevel === undefined || reader.ownerLevel < top)) {
      return {
        condition: 'amqp:link:stolen',
        description:
          `A receiver with epoch '${top}' already exists on this partition and consumer group; ` +
          `a receiver ${reader.ownerLevel === undefined ? 'without an epoch' : `with epoch '${reader.ownerLevel}'`} cannot be created.`,
      };
    }
    if (reader.ownerLevel === undefined && current.size >= MAX_READERS_PER_PARTITION) {
      return {
        condition: 'amqp:resource-limit-exceeded',
        description:
          'Exceeded the maximum number of allowed receivers per partition in a consumer group which is ' +
          `${MAX_READERS_PER_PARTITION}. List of connected receivers - ${[...current].map((r) => r.name ?? 'nil').join(', ')}.`,
      };
    }
    if (reader.ownerLevel !== undefined) {
      for (const other of current) {
        other.disconnect(
          `New receiver with higher epoch of '${reader.ownerLevel}' is created hence current receiver ` +
            `${other.ownerLevel === undefined ? 'without an epoch' : `with epoch '${other.ownerLevel}'`} is getting disconnected.`,
        );
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
