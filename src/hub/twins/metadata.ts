import { isJsonObject, ownValue, setOwn, type JsonObject } from './json.js';

/** What a write stamps on the $metadata of every node it touches. */
export interface MetadataStamp {
  $lastUpdated: string;
  /** Desired properties only: the desired $version the write produced. */
  $lastUpdatedVersion?: number;
}

/**
 * The section's $metadata after `patch` was merged into it. Every node on the patch's paths gets
 * `stamp`, the section root too, which is how IoT Hub records a removal (on the removed key's
 * parent); removed keys lose their metadata, replaced leaves get only the stamp. Metadata mirrors
 * the values, so it needs no look at them: a leaf's metadata holds nothing but a stamp, which the
 * new one overwrites.
 */
export function stampMetadata(metadata: JsonObject, patch: JsonObject, stamp: MetadataStamp): JsonObject {
  const stamped: JsonObject = { ...metadata, ...stamp };
  for (const [key, change] of Object.entries(patch)) {
    if (change === null) {
      delete stamped[key];
    } else if (isJsonObject(change)) {
      const current = ownValue(stamped, key);
      setOwn(stamped, key, stampMetadata(isJsonObject(current) ? current : {}, change, stamp));
    } else {
      setOwn(stamped, key, { ...stamp });
    }
  }
  return stamped;
}
