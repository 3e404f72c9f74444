import { isJsonObject, ownValue, setOwn, type JsonObject } from './json.js';

/**
 * JSON merge patch (RFC 7386), as IoT Hub applies it to tags, desired and reported: nested
 * objects merge, `null` removes a key, anything else (arrays included) replaces. Neither argument
 * is modified; the result may share the parts it did not change with them.
 */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const merged: JsonObject = { ...target };
  for (const [key, change] of Object.entries(patch)) {
    if (change === null) {
      delete merged[key];
    } else if (isJsonObject(change)) {
      const current = ownValue(merged, key);
      setOwn(merged, key, mergePatch(isJsonObject(current) ? current : {}, change));
    } else {
      setOwn(merged, key, change);
    }
  }
  return merged;
}
