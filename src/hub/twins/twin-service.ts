import { EventEmitter } from 'node:events';
import { hubErrors } from '../errors.js';
import type { TwinKind, TwinStore } from '../store/twin-store.js';
import { deviceTwinView, twinDocument, type DeviceTwinView, type TwinDocument, type TwinIdentity } from './document.js';
import { isJsonObject, type JsonObject } from './json.js';
import type { TwinConfigurations } from '../configurations/configuration.js';
import { checkSectionSize, twinLimits, validateSection } from './limits.js';
import { mergePatch } from './merge-patch.js';
import { stampMetadata } from './metadata.js';
import { serviceSections, withoutSystemKeys } from './request-body.js';
import { etagFor, etagMatches, newTwinState, type TwinKey, type TwinState } from './twin-state.js';

export interface TwinEvents {
  /**
   * Desired properties were written. `patch` is what IoT Hub pushes to the device on
   * $iothub/twin/PATCH/properties/desired: the service's patch (after a replace, the whole new
   * desired section) plus the new `$version`.
   */
  desired: [key: TwinKey, patch: JsonObject];
  /** Any write changed the twin (tags, desired or reported); `version` is its new version. */
  changed: [key: TwinKey, version: number];
  /** The same writes, as IoT Hub's twin change notifications tell them: what each merged, or that it replaced the twin; and the twin before. */
  written: [key: TwinKey, write: TwinWrite, before: TwinState];
}

/** A twin write: the merge patches it applied per section (a removed section as its properties set to null), or a replace. */
export type TwinWrite = { op: 'updateTwin'; tags?: JsonObject; desired?: JsonObject; reported?: JsonObject } | { op: 'replaceTwin' };

export interface TwinsOptions {
  /** The clock for `$lastUpdated`. */
  now?: () => Date;
  /** The automatic configurations that target a twin, which its document lists. */
  configurationsOf?: (key: TwinKey) => TwinConfigurations | undefined;
}

/**
 * The twin domain of the local hub: one twin per device and per module, created and removed with
 * the identity, written by the service (tags, desired) and by the device (reported), with IoT
 * Hub's merge semantics, versions, etags, $metadata and limits. A write that breaks a limit or a
 * precondition throws a HubError and leaves the twin as it was.
 *
 * A section counts as written when the request carries at least one key for it, whether or not
 * the values differ, as IoT Hub counts writes and not differences; an empty one writes nothing.
 */
export class Twins extends EventEmitter<TwinEvents> {
  private readonly now: () => Date;
  private readonly configurationsOf: (key: TwinKey) => TwinConfigurations | undefined;

  constructor(
    private readonly store: TwinStore,
    options: TwinsOptions = {},
  ) {
    super();
    this.now = options.now ?? (() => new Date());
    this.configurationsOf = options.configurationsOf ?? (() => undefined);
  }

  /** A fresh twin for a new identity (replacing any twin left under that key). */
  create(key: TwinKey): TwinState {
    const state = newTwinState(this.now());
    this.store.put(key, state);
    return state;
  }

  /** Removes a twin with its identity; removing a device's twin removes its modules' twins too. */
  remove(key: TwinKey): void {
    if (key.moduleId) this.store.delete(key);
    else this.store.deleteDevice(key.deviceId);
  }

  get(key: TwinKey): TwinState {
    return this.store.get(key) ?? notFound(key);
  }

  find(key: TwinKey): TwinState | undefined {
    return this.store.get(key);
  }

  /**
   * PATCH /twins/{id}: merges `tags` and `properties.desired` into the twin. A section set to null
   * removes all of its properties, as on IoT Hub (a write, even of an empty section: the version
   * moves and the device is told, with each removed property as null). Everything else in the body
   * (identity fields, `properties.reported`, desired's `$metadata` and `$version`) is ignored: a
   * twin fetched, modified and sent back carries them all.
   */
  patchFromService(key: TwinKey, patch: unknown, ifMatch?: string): TwinState {
    const { tags, desired } = serviceSections(patch);
    const writesDesired = desired === null || (desired !== undefined && Object.keys(desired).length > 0);
    let desiredPatch: JsonObject = {};
    let tagsPatch: JsonObject | undefined;
    const next = this.write(
      key,
      ifMatch,
      (current, lastUpdated) => {
        let state = current;
        if (tags === null || (tags && Object.keys(tags).length > 0)) {
          tagsPatch = tags ?? removalOf(state.tags);
          state = mergeTags(state, tagsPatch);
        }
        if (writesDesired) {
          desiredPatch = desired ?? removalOf(state.desired);
          state = mergeDesired(state, desiredPatch, lastUpdated);
        }
        return state;
      },
      () => ({ op: 'updateTwin', ...(tagsPatch ? { tags: tagsPatch } : {}), ...(writesDesired ? { desired: desiredPatch } : {}) }),
    );
    if (writesDesired) this.emit('desired', key, { ...desiredPatch, $version: next.desiredVersion });
    return next;
  }

  /** PUT /twins/{id}: replaces tags and desired wholesale; reported belongs to the device and stays. */
  replaceFromService(key: TwinKey, twin: unknown, ifMatch?: string): TwinState {
    const { tags, desired } = serviceSections(twin);
    const next = this.write(
      key,
      ifMatch,
      (current, lastUpdated) => {
        const emptied = { ...current, tags: {}, desired: {}, desiredMetadata: {} };
        return mergeDesired(mergeTags(emptied, tags ?? {}), desired ?? {}, lastUpdated);
      },
      () => ({ op: 'replaceTwin' }),
    );
    this.emit('desired', key, { ...next.desired, $version: next.desiredVersion });
    return next;
  }

  /** The device's patch of its reported properties; returns the reported `$version` after it. */
  patchReported(key: TwinKey, patch: unknown): number {
    if (!isJsonObject(patch)) throw hubErrors.argumentInvalid('The reported properties patch must be a JSON object.');
    const reported = withoutSystemKeys(patch);
    const next = this.write(
      key,
      undefined,
      (current, lastUpdated) => (Object.keys(reported).length > 0 ? mergeReported(current, reported, lastUpdated) : current),
      () => ({ op: 'updateTwin', reported }),
    );
    return next.reportedVersion;
  }

  deviceView(key: TwinKey): DeviceTwinView {
    return deviceTwinView(this.get(key));
  }

  toDocument(key: TwinKey, identity: TwinIdentity): TwinDocument {
    return twinDocument(key, this.get(key), identity, this.configurationsOf(key));
  }

  /** Every device twin, or every module twin, as a document: the query language's collections. */
  *allDocuments(kind: TwinKind, identityOf: (key: TwinKey) => TwinIdentity): IterableIterator<TwinDocument> {
    for (const { key, state } of this.store.entries(kind)) yield twinDocument(key, state, identityOf(key), this.configurationsOf(key));
  }

  count(kind: TwinKind): number {
    return this.store.count(kind);
  }

  /**
   * One atomic write: checks If-Match, lets `change` build the next state (returning `current`
   * to write nothing, throwing to reject), then bumps the twin's version and etag and stores it.
   * `described` tells the write to 'written' listeners, when there are any.
   */
  private write(
    key: TwinKey,
    ifMatch: string | undefined,
    change: (current: TwinState, lastUpdated: string) => TwinState,
    described: () => TwinWrite,
  ): TwinState {
    const lastUpdated = this.now().toISOString();
    let before: TwinState | undefined;
    const next = this.store.update(key, (current) => {
      if (!etagMatches(current.etag, ifMatch)) {
        throw hubErrors.preconditionFailed(`The twin's etag is "${current.etag}", not ${ifMatch}.`);
      }
      const changed = change(current, lastUpdated);
      if (changed === current) return current;
      before = current;
      const version = current.version + 1;
      return { ...changed, version, etag: etagFor(version) };
    });
    if (!next) return notFound(key);
    if (before) {
      this.emit('changed', key, next.version);
      if (this.listenerCount('written') > 0) this.emit('written', key, described(), before);
    }
    return next;
  }
}

/** The merge patch that removes every property of a section. */
function removalOf(section: JsonObject): JsonObject {
  return Object.fromEntries(Object.keys(section).map((name) => [name, null]));
}

function mergeTags(state: TwinState, patch: JsonObject): TwinState {
  validateSection('tags', patch);
  const tags = mergePatch(state.tags, patch);
  checkSectionSize('tags', tags, twinLimits.tagsBytes);
  return { ...state, tags };
}

function mergeDesired(state: TwinState, patch: JsonObject, lastUpdated: string): TwinState {
  validateSection('properties.desired', patch);
  const desired = mergePatch(state.desired, patch);
  checkSectionSize('properties.desired', desired, twinLimits.desiredBytes);
  const desiredVersion = state.desiredVersion + 1;
  const stamp = { $lastUpdated: lastUpdated, $lastUpdatedVersion: desiredVersion };
  return { ...state, desired, desiredMetadata: stampMetadata(state.desiredMetadata, patch, stamp), desiredVersion };
}

function mergeReported(state: TwinState, patch: JsonObject, lastUpdated: string): TwinState {
  validateSection('properties.reported', patch);
  const reported = mergePatch(state.reported, patch);
  checkSectionSize('properties.reported', reported, twinLimits.reportedBytes);
  const reportedMetadata = stampMetadata(state.reportedMetadata, patch, { $lastUpdated: lastUpdated });
  return { ...state, reported, reportedMetadata, reportedVersion: state.reportedVersion + 1 };
}

function notFound(key: TwinKey): never {
  throw key.moduleId ? hubErrors.moduleNotFound(key.deviceId, key.moduleId) : hubErrors.deviceNotFound(key.deviceId);
}
