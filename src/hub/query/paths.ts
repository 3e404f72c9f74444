// Property paths compiled to readers. Property names match case-insensitively, as IoT Hub's own
// examples do (`SELECT DeviceId` returns `deviceId`); an exact match wins when a document holds
// both spellings.

/** The document's own spelling of the last name on the path, and the value found there. */
export type Entry = [key: string, value: unknown];

export type EntryReader = (doc: unknown) => Entry | undefined;
export type ValueReader = (doc: unknown) => unknown;

function child(parent: unknown, name: string, lower: string): Entry | undefined {
  if (typeof parent !== 'object' || parent === null || Array.isArray(parent)) return undefined;
  const record = parent as Record<string, unknown>;
  if (Object.hasOwn(record, name)) return [name, record[name]];
  for (const key of Object.keys(record)) if (key.toLowerCase() === lower) return [key, record[key]];
  return undefined;
}

export function entryReader(segments: readonly string[]): EntryReader {
  const lowers = segments.map((s) => s.toLowerCase());
  return (doc) => {
    let entry: Entry | undefined = ['', doc];
    for (let i = 0; i < segments.length && entry; i++) entry = child(entry[1], segments[i], lowers[i]);
    return entry;
  };
}

export function valueReader(segments: readonly string[]): ValueReader {
  const read = entryReader(segments);
  return (doc) => read(doc)?.[1];
}

/** The path compared ignoring case, for matching SELECT fields against GROUP BY fields. */
export function pathKey(segments: readonly string[]): string {
  return JSON.stringify(segments.map((s) => s.toLowerCase()));
}
