import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/hub/store/database.js';
import { TwinStore } from '../../src/hub/store/twin-store.js';
import { etagFor, newTwinState, type TwinState } from '../../src/hub/twins/twin-state.js';

const created = new Date('2024-05-01T10:00:00.000Z');

function memoryStore(): TwinStore {
  return new TwinStore(openDatabase(':memory:'));
}

function written(state: TwinState): TwinState {
  return {
    ...state,
    tags: { site: { building: '43' } },
    desired: { interval: 5, list: [1, 'a'] },
    reported: { battery: 55 },
    desiredMetadata: { $lastUpdated: 'd', $lastUpdatedVersion: 2, interval: { $lastUpdated: 'd', $lastUpdatedVersion: 2 } },
    reportedMetadata: { $lastUpdated: 'r', battery: { $lastUpdated: 'r' } },
    desiredVersion: 2,
    reportedVersion: 7,
    version: 9,
    etag: etagFor(9),
  };
}

describe('twin state basics', () => {
  test('encodes etags as IoT Hub does: base64 of a 64-bit big-endian counter', () => {
    assert.equal(etagFor(1), 'AAAAAAAAAAE=');
    assert.equal(etagFor(7), 'AAAAAAAAAAc=');
    assert.equal(etagFor(256), 'AAAAAAAAAQA=');
  });

  test('starts a twin with empty sections, versions at 1 and root $metadata', () => {
    assert.deepEqual(newTwinState(created), {
      tags: {},
      desired: {},
      reported: {},
      desiredMetadata: { $lastUpdated: '2024-05-01T10:00:00.000Z' },
      reportedMetadata: { $lastUpdated: '2024-05-01T10:00:00.000Z' },
      desiredVersion: 1,
      reportedVersion: 1,
      version: 1,
      etag: 'AAAAAAAAAAE=',
    });
  });
});

describe('twin store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'twins-store-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('keeps every field of a twin across a reopen of the same file', () => {
    const file = join(dir, 'hub.db');
    const state = written(newTwinState(created));
    const db = openDatabase(file);
    new TwinStore(db).put({ deviceId: 'dev1' }, state);
    new TwinStore(db).put({ deviceId: 'dev1', moduleId: 'mod1' }, newTwinState(created));
    db.close();

    const reopened = new TwinStore(openDatabase(file));
    assert.deepEqual(reopened.get({ deviceId: 'dev1' }), state);
    assert.deepEqual(reopened.get({ deviceId: 'dev1', moduleId: 'mod1' }), newTwinState(created));
    assert.equal(reopened.get({ deviceId: 'dev2' }), undefined);
  });

  test('tells device twins from module twins with the same device id', () => {
    const store = memoryStore();
    store.put({ deviceId: 'dev1' }, newTwinState(created));
    assert.equal(store.get({ deviceId: 'dev1', moduleId: 'mod1' }), undefined);
    store.put({ deviceId: 'dev1', moduleId: 'mod1' }, written(newTwinState(created)));
    assert.equal(store.get({ deviceId: 'dev1' })!.version, 1);
    assert.equal(store.get({ deviceId: 'dev1', moduleId: 'mod1' })!.version, 9);
  });

  test('overwrites a twin on put', () => {
    const store = memoryStore();
    store.put({ deviceId: 'dev1' }, written(newTwinState(created)));
    store.put({ deviceId: 'dev1' }, newTwinState(created));
    assert.deepEqual(store.get({ deviceId: 'dev1' }), newTwinState(created));
    assert.equal(store.count('devices'), 1);
  });

  test('updates in one transaction: the change is stored, a throwing change stores nothing', () => {
    const store = memoryStore();
    const key = { deviceId: 'dev1' };
    store.put(key, newTwinState(created));
    const next = store.update(key, (current) => ({ ...current, tags: { a: 1 }, version: 2 }));
    assert.deepEqual(next!.tags, { a: 1 });
    assert.deepEqual(store.get(key)!.tags, { a: 1 });
    assert.throws(
      () =>
        store.update(key, (current) => {
          store.put({ deviceId: 'other' }, newTwinState(created));
          throw new Error(`rejected at version ${current.version}`);
        }),
      /rejected at version 2/,
    );
    assert.equal(store.get({ deviceId: 'other' }), undefined);
    assert.deepEqual(store.get(key)!.tags, { a: 1 });
    assert.equal(
      store.update({ deviceId: 'nope' }, (current) => current),
      undefined,
    );
  });

  test('deletes one twin, or a device twin with all its module twins', () => {
    const store = memoryStore();
    for (const key of [
      { deviceId: 'a' },
      { deviceId: 'a', moduleId: 'm1' },
      { deviceId: 'a', moduleId: 'm2' },
      { deviceId: 'b' },
      { deviceId: 'b', moduleId: 'm1' },
    ]) {
      store.put(key, newTwinState(created));
    }
    store.delete({ deviceId: 'a', moduleId: 'm1' });
    assert.equal(store.get({ deviceId: 'a', moduleId: 'm1' }), undefined);
    assert.ok(store.get({ deviceId: 'a' }));
    store.deleteDevice('a');
    assert.equal(store.get({ deviceId: 'a' }), undefined);
    assert.equal(store.get({ deviceId: 'a', moduleId: 'm2' }), undefined);
    assert.deepEqual(
      [...store.entries('devices')].map((e) => e.key),
      [{ deviceId: 'b' }],
    );
    assert.deepEqual(
      [...store.entries('modules')].map((e) => e.key),
      [{ deviceId: 'b', moduleId: 'm1' }],
    );
  });

  test('walks all device twins and all module twins in key order, across pages, and counts them', () => {
    const store = memoryStore();
    const devices = Array.from({ length: 600 }, (_, i) => `dev${String(i).padStart(4, '0')}`);
    for (const deviceId of [...devices].reverse()) {
      store.put({ deviceId }, newTwinState(created));
      // Three modules a device: pages of module twins end inside a device, and must resume there.
      for (const moduleId of ['m3', 'm1', 'm2']) store.put({ deviceId, moduleId }, newTwinState(created));
    }
    const deviceKeys = [...store.entries('devices')].map((e) => e.key);
    assert.deepEqual(
      deviceKeys,
      devices.map((deviceId) => ({ deviceId })),
    );
    const moduleKeys = [...store.entries('modules')].map((e) => `${e.key.deviceId}/${e.key.moduleId}`);
    assert.deepEqual(
      moduleKeys,
      devices.flatMap((d) => [`${d}/m1`, `${d}/m2`, `${d}/m3`]),
    );
    assert.equal(store.count('devices'), 600);
    assert.equal(store.count('modules'), 1800);
  });

  test('lets the caller write between pages of a walk', () => {
    const store = memoryStore();
    for (let i = 0; i < 300; i++) store.put({ deviceId: `d${String(i).padStart(3, '0')}` }, newTwinState(created));
    let seen = 0;
    for (const { key } of store.entries('devices')) {
      store.update(key, (current) => ({ ...current, version: current.version + 1 }));
      seen++;
    }
    assert.equal(seen, 300);
    assert.ok([...store.entries('devices')].every((e) => e.state.version === 2));
  });
});
