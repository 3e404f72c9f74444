import { after, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubError } from '../../src/hub/errors.js';
import { openDatabase } from '../../src/hub/store/database.js';
import { TwinStore } from '../../src/hub/store/twin-store.js';
import type { TwinIdentity } from '../../src/hub/twins/document.js';
import type { JsonObject } from '../../src/hub/twins/json.js';
import { Twins } from '../../src/hub/twins/twin-service.js';
import type { TwinKey } from '../../src/hub/twins/twin-state.js';

const device: TwinKey = { deviceId: 'dev1' };
const module1: TwinKey = { deviceId: 'dev1', moduleId: 'mod1' };

let clock: Date;
let twins: Twins;
let desiredEvents: [TwinKey, JsonObject][];

function tick(): string {
  clock = new Date(clock.getTime() + 1000);
  return clock.toISOString();
}

function hubError(status: number, code: string, fragment = ''): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof HubError, String(err));
    assert.equal(err.status, status);
    assert.equal(err.code, code);
    assert.ok(err.message.includes(fragment), `"${err.message}" should mention "${fragment}"`);
    return true;
  };
}

const identity: TwinIdentity = {
  deviceEtag: 'MTIzNDU2Nzg=',
  status: 'enabled',
  statusUpdateTime: '0001-01-01T00:00:00Z',
  connectionState: 'Disconnected',
  lastActivityTime: '0001-01-01T00:00:00Z',
  cloudToDeviceMessageCount: 0,
  authenticationType: 'sas',
  capabilities: { iotEdge: false },
};

beforeEach(() => {
  clock = new Date('2024-05-01T10:00:00.000Z');
  twins = new Twins(new TwinStore(openDatabase(':memory:')), { now: () => clock });
  twins.create(device);
  twins.create(module1);
  desiredEvents = [];
  twins.on('desired', (key, patch) => desiredEvents.push([key, patch]));
});

describe('twin lifecycle', () => {
  test('creates twins with versions at 1 and the first etag', () => {
    const state = twins.get(module1);
    assert.equal(state.version, 1);
    assert.equal(state.desiredVersion, 1);
    assert.equal(state.reportedVersion, 1);
    assert.equal(state.etag, 'AAAAAAAAAAE=');
  });

  test('answers an unknown twin with IoT Hub not-found errors, for reads and writes', () => {
    assert.throws(() => twins.get({ deviceId: 'ghost' }), hubError(404, 'DeviceNotFound', 'ghost'));
    assert.throws(() => twins.get({ deviceId: 'dev1', moduleId: 'ghost' }), hubError(404, 'ModuleNotFound', 'ghost'));
    assert.throws(() => twins.patchFromService({ deviceId: 'ghost' }, { tags: { a: 1 } }), hubError(404, 'DeviceNotFound'));
    assert.throws(() => twins.patchReported({ deviceId: 'dev1', moduleId: 'ghost' }, { a: 1 }), hubError(404, 'ModuleNotFound'));
  });

  test('removes a module twin alone, and a device twin with its module twins', () => {
    twins.create({ deviceId: 'dev1', moduleId: 'mod2' });
    twins.remove(module1);
    assert.throws(() => twins.get(module1), hubError(404, 'ModuleNotFound'));
    assert.equal(twins.count('modules'), 1);
    twins.remove(device);
    assert.equal(twins.count('devices'), 0);
    assert.equal(twins.count('modules'), 0);
  });

  test('keeps writes across a reopen of the same database file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'twins-service-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'hub.db');
    const db = openDatabase(file);
    const first = new Twins(new TwinStore(db));
    first.create(device);
    first.patchFromService(device, { tags: { site: 'a' }, properties: { desired: { interval: 5 } } });
    first.patchReported(device, { battery: 55 });
    const before = first.get(device);
    db.close();
    assert.deepEqual(new Twins(new TwinStore(openDatabase(file))).get(device), before);
  });
});

describe('twin patches from the service', () => {
  test('merges nested objects, removes nulls and replaces arrays', () => {
    twins.patchFromService(device, {
      tags: { location: { building: '43', floor: '1' } },
      properties: { desired: { telemetry: { interval: 5, units: 'C' }, list: [1, 2], old: 'x' } },
    });
    const state = twins.patchFromService(device, {
      tags: { location: { floor: null, room: 'b' } },
      properties: { desired: { telemetry: { interval: 10 }, list: ['a'], old: null } },
    });
    assert.deepEqual(state.tags, { location: { building: '43', room: 'b' } });
    assert.deepEqual(state.desired, { telemetry: { interval: 10, units: 'C' }, list: ['a'] });
    assert.deepEqual(twins.get(device).desired, state.desired);
  });

  test('bumps the twin version on every write, and the desired $version only for desired', () => {
    let state = twins.patchFromService(device, { tags: { a: 1 } });
    assert.deepEqual([state.version, state.desiredVersion, state.reportedVersion], [2, 1, 1]);
    state = twins.patchFromService(device, { properties: { desired: { a: 1 } } });
    assert.deepEqual([state.version, state.desiredVersion, state.reportedVersion], [3, 2, 1]);
    state = twins.patchFromService(device, { tags: { b: 1 }, properties: { desired: { b: 1 } } });
    assert.deepEqual([state.version, state.desiredVersion, state.reportedVersion], [4, 3, 1]);
  });

  test('counts a write of unchanged values as a write, and an empty patch as none', () => {
    twins.patchFromService(device, { properties: { desired: { a: 1 } } });
    assert.equal(twins.patchFromService(device, { properties: { desired: { a: 1 } } }).desiredVersion, 3);
    const before = twins.get(device);
    assert.deepEqual(twins.patchFromService(device, { tags: {}, properties: { desired: {} } }), before);
    assert.deepEqual(twins.patchFromService(device, {}), before);
    assert.equal(desiredEvents.length, 2);
  });

  test('ignores what a fetched twin carries besides tags and desired', () => {
    twins.patchReported(device, { battery: 55 });
    const fetched = JSON.parse(JSON.stringify(twins.toDocument(device, identity)));
    fetched.tags = { site: 'a' };
    fetched.properties.desired.interval = 7;
    fetched.properties.reported.battery = 1;
    fetched.version = 99;
    const state = twins.patchFromService(device, fetched);
    assert.deepEqual(state.desired, { interval: 7 });
    assert.deepEqual(state.tags, { site: 'a' });
    assert.deepEqual(state.reported, { battery: 55 });
    assert.equal(state.desiredVersion, 2);
    assert.equal(state.version, 3);
  });

  test('rejects bodies and sections that are not JSON objects', () => {
    assert.throws(() => twins.patchFromService(device, [1]), hubError(400, 'ArgumentInvalid', 'twin'));
    assert.throws(() => twins.patchFromService(device, { tags: [1] }), hubError(400, 'ArgumentInvalid', 'tags'));
    assert.throws(() => twins.patchFromService(device, { properties: 'x' }), hubError(400, 'ArgumentInvalid', 'properties'));
    assert.throws(
      () => twins.patchFromService(device, { properties: { desired: 3 } }),
      hubError(400, 'ArgumentInvalid', 'properties.desired'),
    );
    assert.throws(() => twins.patchReported(device, 'x'), hubError(400, 'ArgumentInvalid', 'reported'));
  });
});

describe('twin etags and If-Match', () => {
  test('changes the etag with every write', () => {
    const etags = [twins.get(device).etag];
    etags.push(twins.patchFromService(device, { tags: { a: 1 } }).etag);
    twins.patchReported(device, { a: 1 });
    etags.push(twins.get(device).etag);
    etags.push(twins.replaceFromService(device, {}).etag);
    assert.deepEqual(etags, ['AAAAAAAAAAE=', 'AAAAAAAAAAI=', 'AAAAAAAAAAM=', 'AAAAAAAAAAQ=']);
  });

  test('applies a patch whose If-Match is the current etag, quoted or not, or *', () => {
    let etag = twins.get(device).etag;
    etag = twins.patchFromService(device, { tags: { a: 1 } }, `"${etag}"`).etag;
    twins.patchFromService(device, { tags: { a: 2 } }, etag);
    twins.patchFromService(device, { tags: { a: 3 } }, '*');
    twins.replaceFromService(device, { tags: { a: 4 } }, '"*"');
    assert.deepEqual(twins.get(device).tags, { a: 4 });
  });

  test('rejects a stale If-Match with 412 and leaves the twin and listeners alone', () => {
    const stale = twins.get(device).etag;
    twins.patchFromService(device, { tags: { a: 1 } });
    const before = twins.get(device);
    assert.throws(
      () => twins.patchFromService(device, { properties: { desired: { a: 2 } } }, `"${stale}"`),
      hubError(412, 'PreconditionFailed', stale),
    );
    assert.throws(() => twins.replaceFromService(device, { tags: {} }, stale), hubError(412, 'PreconditionFailed'));
    assert.deepEqual(twins.get(device), before);
    assert.equal(desiredEvents.length, 0);
  });
});

describe('twin $metadata through writes', () => {
  test('stamps desired nodes with $lastUpdated and $lastUpdatedVersion, and updates only what a patch touches', () => {
    const t1 = tick();
    twins.patchFromService(device, { properties: { desired: { cfg: { a: 1, b: 2 }, x: true } } });
    const t2 = tick();
    const state = twins.patchFromService(device, { properties: { desired: { cfg: { b: 3 } } } });
    assert.deepEqual(state.desiredMetadata, {
      $lastUpdated: t2,
      $lastUpdatedVersion: 3,
      cfg: {
        $lastUpdated: t2,
        $lastUpdatedVersion: 3,
        a: { $lastUpdated: t1, $lastUpdatedVersion: 2 },
        b: { $lastUpdated: t2, $lastUpdatedVersion: 3 },
      },
      x: { $lastUpdated: t1, $lastUpdatedVersion: 2 },
    });
  });

  test('stamps reported nodes with $lastUpdated only', () => {
    const created = clock.toISOString();
    assert.deepEqual(twins.get(device).reportedMetadata, { $lastUpdated: created });
    const t1 = tick();
    twins.patchReported(device, { fw: { version: '1.0' } });
    assert.deepEqual(twins.get(device).reportedMetadata, {
      $lastUpdated: t1,
      fw: { $lastUpdated: t1, version: { $lastUpdated: t1 } },
    });
  });
});

describe('twin limits through writes', () => {
  function assertUnchangedAfter(key: TwinKey, write: () => unknown, status: number, fragment: string): void {
    const before = twins.get(key);
    assert.throws(write, hubError(status, 'ArgumentInvalid', fragment));
    assert.deepEqual(twins.get(key), before);
    assert.equal(desiredEvents.length, 0);
  }

  test('rejects keys with ".", "$" or a space anywhere in tags, desired or reported', () => {
    assertUnchangedAfter(device, () => twins.patchFromService(device, { tags: { 'a.b': 1 } }), 400, "'a.b'");
    assertUnchangedAfter(device, () => twins.patchFromService(device, { properties: { desired: { ok: { $x: 1 } } } }), 400, "'$x'");
    assertUnchangedAfter(device, () => twins.patchReported(device, { 'a b': 1 }), 400, "'a b'");
    assertUnchangedAfter(device, () => twins.replaceFromService(device, { tags: { ok: 1, 'x.y': 2 } }), 400, "'x.y'");
  });

  test('ignores $version and $metadata at the top of desired and reported, and writes nothing for them alone', () => {
    const before = twins.get(device);
    twins.patchFromService(device, { properties: { desired: { $version: 42, $metadata: { a: 1 } } } });
    twins.patchReported(device, { $version: 42 });
    assert.deepEqual(twins.get(device), before);
    const state = twins.patchFromService(device, { properties: { desired: { $version: 42, a: 1 } } });
    assert.equal(state.desiredVersion, 2);
    assert.deepEqual(state.desired, { a: 1 });
  });

  test('rejects objects nested deeper than 10 levels', () => {
    let deep: JsonObject = { leaf: 1 };
    for (let level = 11; level >= 1; level--) deep = { [`l${level}`]: deep };
    assertUnchangedAfter(device, () => twins.patchReported(device, deep), 400, 'nested at most 10');
    twins.patchReported(device, (deep as { l1: JsonObject }).l1);
  });

  test('rejects tags over 8 KB, leaving the twin unchanged', () => {
    twins.patchFromService(device, { tags: { a: 'x'.repeat(4000), b: 'x'.repeat(4000) } });
    assertUnchangedAfter(device, () => twins.patchFromService(device, { tags: { c: 'x'.repeat(200) } }), 400, '8 KB');
  });

  test('rejects desired over 32 KB, and a patch with it does not write its tags either', () => {
    const big = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'x'.repeat(4094)]));
    assert.equal(twins.patchFromService(device, { properties: { desired: big } }).desiredVersion, 2); // exactly 32768
    desiredEvents = [];
    assertUnchangedAfter(
      device,
      () => twins.patchFromService(device, { tags: { fine: 1 }, properties: { desired: { k8: 'x' } } }),
      400,
      'properties.desired would be 32771 bytes',
    );
    assertUnchangedAfter(device, () => twins.replaceFromService(device, { properties: { desired: { ...big, more: 1 } } }), 400, '32 KB');
  });

  test('rejects reported over 32 KB, leaving the twin unchanged', () => {
    const big = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'x'.repeat(4000)]));
    twins.patchReported(module1, big);
    assertUnchangedAfter(module1, () => twins.patchReported(module1, { extra: 'x'.repeat(1000) }), 400, 'properties.reported');
    twins.patchReported(module1, { k0: null, extra: 'x'.repeat(1000) });
  });
});

describe('twin replace from the service', () => {
  test('replaces tags and desired wholesale, keeps reported, and stamps fresh metadata', () => {
    twins.patchFromService(device, { tags: { old: 1, keep: { a: 1 } }, properties: { desired: { old: 1, cfg: { a: 1 } } } });
    twins.patchReported(device, { battery: 55 });
    const t = tick();
    const state = twins.replaceFromService(device, {
      tags: { keep: { b: 2 } },
      properties: { desired: { cfg: { b: 2 }, gone: null }, reported: { battery: 1 } },
    });
    assert.deepEqual(state.tags, { keep: { b: 2 } });
    assert.deepEqual(state.desired, { cfg: { b: 2 } });
    assert.deepEqual(state.reported, { battery: 55 });
    assert.deepEqual([state.version, state.desiredVersion, state.reportedVersion], [4, 3, 2]);
    const stamp = { $lastUpdated: t, $lastUpdatedVersion: 3 };
    assert.deepEqual(state.desiredMetadata, { ...stamp, cfg: { ...stamp, b: stamp } });
  });

  test('empties tags and desired that the new twin leaves out', () => {
    twins.patchFromService(device, { tags: { a: 1 }, properties: { desired: { a: 1 } } });
    const state = twins.replaceFromService(device, { deviceId: 'dev1' });
    assert.deepEqual([state.tags, state.desired], [{}, {}]);
  });
});

describe('desired events', () => {
  test('carry the service patch, nulls included, plus the new $version, for the twin written', () => {
    twins.patchFromService(module1, { tags: { t: 1 }, properties: { desired: { a: { b: 1 }, c: null } } });
    twins.patchFromService(module1, { tags: { t: 2 } });
    assert.deepEqual(desiredEvents, [[module1, { a: { b: 1 }, c: null, $version: 2 }]]);
  });

  test('carry the whole new desired section after a replace', () => {
    twins.patchFromService(device, { properties: { desired: { old: 1 } } });
    twins.replaceFromService(device, { properties: { desired: { fresh: { x: 1 } } } });
    assert.deepEqual(desiredEvents[1], [device, { fresh: { x: 1 }, $version: 3 }]);
  });

  test('are not emitted for reported patches', () => {
    twins.patchReported(device, { a: 1 });
    assert.equal(desiredEvents.length, 0);
  });
});

describe('twin views', () => {
  test('gives the device its desired and reported with $version and without $metadata or tags', () => {
    twins.patchFromService(device, { tags: { t: 1 }, properties: { desired: { a: 1 } } });
    assert.equal(twins.patchReported(device, { b: 2 }), 2);
    assert.equal(twins.patchReported(device, { c: 3 }), 3);
    assert.deepEqual(twins.deviceView(device), {
      desired: { a: 1, $version: 2 },
      reported: { b: 2, c: 3, $version: 3 },
    });
  });

  test('builds the service document of a device twin as IoT Hub shows it', () => {
    const created = clock.toISOString();
    const t = tick();
    twins.patchFromService(device, { tags: { site: 'a' }, properties: { desired: { interval: 5 } } });
    assert.deepEqual(twins.toDocument(device, { ...identity, statusReason: 'provisioned' }), {
      deviceId: 'dev1',
      etag: 'AAAAAAAAAAI=',
      deviceEtag: 'MTIzNDU2Nzg=',
      status: 'enabled',
      statusReason: 'provisioned',
      statusUpdateTime: '0001-01-01T00:00:00Z',
      connectionState: 'Disconnected',
      lastActivityTime: '0001-01-01T00:00:00Z',
      cloudToDeviceMessageCount: 0,
      authenticationType: 'sas',
      x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
      modelId: '',
      version: 2,
      tags: { site: 'a' },
      properties: {
        desired: {
          interval: 5,
          $metadata: { $lastUpdated: t, $lastUpdatedVersion: 2, interval: { $lastUpdated: t, $lastUpdatedVersion: 2 } },
          $version: 2,
        },
        reported: { $metadata: { $lastUpdated: created }, $version: 1 },
      },
      capabilities: { iotEdge: false },
    });
  });

  test('builds a module twin document with moduleId, and without tags while there are none', () => {
    const { capabilities: _none, ...moduleIdentity } = identity;
    const doc = twins.toDocument(module1, moduleIdentity);
    assert.equal(doc.moduleId, 'mod1');
    assert.ok(!('tags' in doc));
    assert.ok(!('capabilities' in doc));
    assert.ok(!('statusReason' in doc));
    assert.deepEqual(Object.keys(doc).slice(0, 3), ['deviceId', 'moduleId', 'etag']);
  });

  test('lists all device twins or all module twins as documents', () => {
    twins.create({ deviceId: 'dev2' });
    twins.patchFromService({ deviceId: 'dev2' }, { tags: { n: 2 } });
    const seen: TwinKey[] = [];
    const docs = [
      ...twins.allDocuments('devices', (key) => {
        seen.push(key);
        return identity;
      }),
    ];
    assert.deepEqual(
      docs.map((d) => [d.deviceId, d.tags]),
      [
        ['dev1', undefined],
        ['dev2', { n: 2 }],
      ],
    );
    assert.deepEqual(seen, [{ deviceId: 'dev1' }, { deviceId: 'dev2' }]);
    const modules = [...twins.allDocuments('modules', () => identity)];
    assert.deepEqual(
      modules.map((d) => `${d.deviceId}/${d.moduleId}`),
      ['dev1/mod1'],
    );
  });
});
