import { parseIfMatch } from '../if-match.js';
import type { JsonObject } from './json.js';

/** Which twin: a device's (no moduleId) or one of its modules'. */
export interface TwinKey {
  deviceId: string;
  moduleId?: string;
}

/**
 * Everything the hub keeps for one twin. `desiredMetadata` and `reportedMetadata` already have the
 * shape IoT Hub shows under `$metadata`: every object and leaf has `$lastUpdated`, and desired
 * entries also `$lastUpdatedVersion`.
 */
export interface TwinState {
  tags: JsonObject;
  desired: JsonObject;
  reported: JsonObject;
  desiredMetadata: JsonObject;
  reportedMetadata: JsonObject;
  desiredVersion: number;
  reportedVersion: number;
  /** Counts every write to tags, desired or reported. */
  version: number;
  etag: string;
}

/**
 * IoT Hub's twin etags are a base64-encoded 64-bit big-endian counter: version 1 is "AAAAAAAAAAE=".
 * The twin version is bumped on every write, so it serves as that counter.
 */
export function etagFor(version: number): string {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(version));
  return bytes.toString('base64');
}

/** A new twin as IoT Hub creates it with its identity: empty sections, every version at 1. */
export function newTwinState(now: Date): TwinState {
  const lastUpdated = now.toISOString();
  return {
    tags: {},
    desired: {},
    reported: {},
    desiredMetadata: { $lastUpdated: lastUpdated },
    reportedMetadata: { $lastUpdated: lastUpdated },
    desiredVersion: 1,
    reportedVersion: 1,
    version: 1,
    etag: etagFor(1),
  };
}

/**
 * Whether an If-Match header value lets a write through: absent and `*` always match; otherwise it
 * must name the current etag. The service SDKs send the etag quoted, as HTTP wants it.
 */
export function etagMatches(current: string, ifMatch: string | undefined): boolean {
  const wanted = parseIfMatch(ifMatch);
  return wanted === undefined || wanted === '*' || wanted === current;
}
