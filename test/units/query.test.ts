import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HubError } from '../../src/hub/errors.js';
import { executeQuery, type QuerySource, type TwinDocument } from '../../src/hub/query/index.js';
import { fleet } from '../helpers/query-fixtures.js';

const { devices, modules, source } = fleet(300);

/** Every result of a query, following continuation tokens. */
function runAll(text: string, from: QuerySource = source, pageSize = 1000): unknown[] {
  const items: unknown[] = [];
  let continuationToken: string | undefined;
  for (let pages = 1; ; pages++) {
    const page = executeQuery(text, from, { pageSize, continuationToken });
    items.push(...page.items);
    continuationToken = page.continuationToken;
    if (!continuationToken) return items;
    assert.ok(pages < 100, 'paging must end');
  }
}

/** Reads a dotted path the plain JavaScript way: the oracle the engine is checked against. */
function get(doc: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (typeof v === 'object' && v !== null ? (v as TwinDocument)[k] : undefined), doc);
}

const idsOf = (items: unknown[]) => items.map((t) => (t as TwinDocument).deviceId);

/** The query's WHERE must select exactly the devices the predicate selects, in source order. */
function expectMatches(where: string, predicate: (d: TwinDocument) => boolean): void {
  const expected = devices.filter(predicate).map((d) => d.deviceId);
  assert.ok(
    expected.length > 0 && expected.length < devices.length,
    `the fixture must make "${where}" selective, but it matches ${expected.length} of ${devices.length}`,
  );
  assert.deepEqual(idsOf(runAll(`SELECT * FROM devices WHERE ${where}`)), expected);
}

function assertHubError(fn: () => unknown, errorCode: number, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HubError, `expected a HubError, got ${String(e)}`);
    assert.equal(e.status, 400);
    assert.equal(e.errorCode, errorCode);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

describe('query filters', () => {
  test('SELECT * FROM devices returns every twin unchanged', () => {
    const all = runAll('SELECT * FROM devices');
    assert.equal(all.length, devices.length);
    assert.equal(all[42], devices[42]);
  });

  test('compares strings, numbers, booleans and null', () => {
    expectMatches("tags.location.region = 'US'", (d) => get(d, 'tags.location.region') === 'US');
    expectMatches('properties.reported.temperature > 30.5', (d) => (get(d, 'properties.reported.temperature') as number) > 30.5);
    expectMatches('properties.reported.temperature >= 30.5', (d) => (get(d, 'properties.reported.temperature') as number) >= 30.5);
    expectMatches('properties.reported.temperature < 20', (d) => (get(d, 'properties.reported.temperature') as number) < 20);
    expectMatches('properties.reported.temperature <= 20.5', (d) => (get(d, 'properties.reported.temperature') as number) <= 20.5);
    expectMatches('properties.reported.temperature != 25.5', (d) => get(d, 'properties.reported.temperature') !== 25.5);
    expectMatches('properties.reported.temperature <> 25.5', (d) => get(d, 'properties.reported.temperature') !== 25.5);
    expectMatches('properties.reported.maintenance = true', (d) => get(d, 'properties.reported.maintenance') === true);
    expectMatches('properties.reported.maintenance = false', (d) => get(d, 'properties.reported.maintenance') === false);
    expectMatches('properties.reported.connectivity = null', (d) => get(d, 'properties.reported.connectivity') === null);
    expectMatches('cloudToDeviceMessageCount = 0x3', (d) => d.cloudToDeviceMessageCount === 3);
  });

  test('orders ISO date strings by string comparison', () => {
    const reboot = (d: TwinDocument) => get(d, 'properties.reported.rebootTime') as string | undefined;
    expectMatches("properties.reported.rebootTime > '2024-01-05'", (d) => reboot(d) !== undefined && reboot(d)! > '2024-01-05');
    expectMatches(
      "properties.reported.rebootTime >= '2024-01-03T00:00:00Z' AND properties.reported.rebootTime < '2024-01-04T12:00:00Z'",
      (d) => reboot(d) !== undefined && reboot(d)! >= '2024-01-03T00:00:00Z' && reboot(d)! < '2024-01-04T12:00:00Z',
    );
  });

  test('never matches values of different types: no coercion, not even for != or <', () => {
    const floor = (d: TwinDocument) => get(d, 'tags.floor');
    expectMatches('tags.floor = 3', (d) => floor(d) === 3);
    expectMatches("tags.floor = '3'", (d) => floor(d) === '3');
    expectMatches('tags.floor != 3', (d) => typeof floor(d) === 'number' && floor(d) !== 3);
    expectMatches('tags.floor > 2', (d) => typeof floor(d) === 'number' && (floor(d) as number) > 2);
    // 'wired' is the only string that differs; null, objects and missing values are not "different".
    expectMatches("properties.reported.connectivity != 'wifi'", (d) => get(d, 'properties.reported.connectivity') === 'wired');
    assert.deepEqual(runAll("SELECT * FROM devices WHERE properties.reported.connectivity = 'cellular'"), []);
    assert.deepEqual(runAll('SELECT * FROM devices WHERE properties.reported.maintenance = 1'), []);
  });

  test('treats a condition on a missing property as false, under NOT too', () => {
    const region = (d: TwinDocument) => get(d, 'tags.location.region');
    expectMatches("tags.location.region != 'US'", (d) => region(d) !== undefined && region(d) !== 'US');
    expectMatches("NOT (tags.location.region = 'US')", (d) => region(d) !== undefined && region(d) !== 'US');
    assert.deepEqual(runAll("SELECT * FROM devices WHERE tags.nothing.here = 'x' OR tags.nothing.here != 'x'"), []);
  });

  test('matches only where the condition is exactly true', () => {
    expectMatches('properties.reported.maintenance', (d) => get(d, 'properties.reported.maintenance') === true);
    assert.deepEqual(runAll('SELECT * FROM devices WHERE tags.location.region'), []);
  });

  test('binds NOT before AND before OR, and parentheses override', () => {
    const disabled = (d: TwinDocument) => d.status === 'disabled';
    const connected = (d: TwinDocument) => d.connectionState === 'Connected';
    const us = (d: TwinDocument) => get(d, 'tags.location.region') === 'US';
    const loose = (d: TwinDocument) => disabled(d) || (connected(d) && us(d));
    const tight = (d: TwinDocument) => (disabled(d) || connected(d)) && us(d);
    assert.notDeepEqual(devices.filter(loose), devices.filter(tight), 'the fixture must tell the two groupings apart');
    expectMatches("status = 'disabled' OR connectionState = 'Connected' AND tags.location.region = 'US'", loose);
    expectMatches("(status = 'disabled' OR connectionState = 'Connected') AND tags.location.region = 'US'", tight);

    const floor2 = (d: TwinDocument) => get(d, 'tags.floor') === 2;
    expectMatches("NOT status = 'enabled' AND tags.floor = 2", (d) => d.status !== 'enabled' && floor2(d));
    // Three-valued logic: for an enabled twin whose floor is a string, `tags.floor = 2` is undefined,
    // so is the AND, and so is its NOT; a disabled twin's AND is false whatever its floor.
    expectMatches("NOT (status = 'enabled' AND tags.floor = 2)", (d) =>
      d.status !== 'enabled' ? true : typeof get(d, 'tags.floor') === 'number' && !floor2(d),
    );
  });

  test('filters with IN and NIN lists, strictly typed', () => {
    const region = (d: TwinDocument) => get(d, 'tags.location.region');
    expectMatches("tags.location.region IN ['US', 'EU']", (d) => region(d) === 'US' || region(d) === 'EU');
    expectMatches("tags.location.region NIN ['US']", (d) => region(d) !== undefined && region(d) !== 'US');
    expectMatches("tags.floor IN [1, '4']", (d) => get(d, 'tags.floor') === 1 || get(d, 'tags.floor') === '4');
    expectMatches("deviceId IN ['device-0001', 'device-0002', 'nope']", (d) =>
      ['device-0001', 'device-0002'].includes(d.deviceId as string),
    );
  });

  test('IS_DEFINED tells present (even null) from missing', () => {
    expectMatches('IS_DEFINED(properties.reported.rebootTime)', (d) => get(d, 'properties.reported.rebootTime') !== undefined);
    expectMatches('NOT IS_DEFINED(tags.location)', (d) => get(d, 'tags.location') === undefined);
    expectMatches('is_defined(properties.reported.connectivity)', (d) => get(d, 'properties.reported.connectivity') !== undefined);
  });

  test('checks types with IS_NULL, IS_BOOL, IS_NUMBER, IS_STRING, IS_OBJECT and IS_PRIMITIVE', () => {
    const connectivity = (d: TwinDocument) => get(d, 'properties.reported.connectivity');
    expectMatches('IS_NULL(properties.reported.connectivity)', (d) => connectivity(d) === null);
    expectMatches('IS_BOOL(properties.reported.maintenance)', (d) => typeof get(d, 'properties.reported.maintenance') === 'boolean');
    expectMatches('IS_NUMBER(tags.floor)', (d) => typeof get(d, 'tags.floor') === 'number');
    expectMatches('IS_STRING(tags.floor)', (d) => typeof get(d, 'tags.floor') === 'string');
    expectMatches('IS_OBJECT(properties.reported.connectivity)', (d) => typeof connectivity(d) === 'object' && connectivity(d) !== null);
    expectMatches('IS_PRIMITIVE(properties.reported.connectivity)', (d) => connectivity(d) === null || typeof connectivity(d) === 'string');
  });

  test('matches strings with STARTSWITH, ENDSWITH and CONTAINS, and nothing that is not a string', () => {
    const firmware = (d: TwinDocument) => get(d, 'properties.reported.firmware') as string;
    expectMatches("STARTSWITH(deviceId, 'device-01')", (d) => (d.deviceId as string).startsWith('device-01'));
    expectMatches("STARTS_WITH(properties.reported.firmware, 'beta')", (d) => firmware(d).startsWith('beta'));
    expectMatches("ENDSWITH(properties.reported.firmware, '.1')", (d) => firmware(d).endsWith('.1'));
    expectMatches("CONTAINS(properties.reported.firmware, '.0')", (d) => firmware(d).includes('.0'));
    expectMatches("CONTAINS(tags.floor, '3')", (d) => get(d, 'tags.floor') === '3');
    expectMatches("NOT CONTAINS(properties.reported.connectivity, 'fi')", (d) => get(d, 'properties.reported.connectivity') === 'wired');
  });

  test('computes arithmetic on numbers only', () => {
    const temperature = (d: TwinDocument) => get(d, 'properties.reported.temperature') as number;
    expectMatches('properties.reported.temperature * 2 - 1 > 60', (d) => temperature(d) * 2 - 1 > 60);
    expectMatches('-properties.reported.temperature < -30', (d) => -temperature(d) < -30);
    expectMatches('cloudToDeviceMessageCount % 2 = 1', (d) => (d.cloudToDeviceMessageCount as number) % 2 === 1);
    assert.deepEqual(runAll("SELECT * FROM devices WHERE tags.floor + 1 = '31'"), []);
  });

  test('matches property names without regard to case, and [[escaped]] names', () => {
    expectMatches("DeviceId = 'device-0007'", (d) => d.deviceId === 'device-0007');
    expectMatches("TAGS.Location.REGION = 'EU'", (d) => get(d, 'tags.location.region') === 'EU');
    expectMatches("tags.[[group]] = 'blue'", (d) => get(d, 'tags.group') === 'blue');
  });

  test('reads keywords and the collection name in any case, strings in either quote', () => {
    const expected = devices.filter((d) => d.status === 'disabled' && d.connectionState === 'Connected').map((d) => d.deviceId);
    assert.ok(expected.length > 0);
    assert.deepEqual(idsOf(runAll(`select * FROM Devices where status = "disabled" And connectionState = 'Connected'`)), expected);
  });
});

describe('query projections', () => {
  test('selects fields, named after their last property name unless aliased', () => {
    assert.deepEqual(
      runAll(
        "SELECT deviceId, tags.location.region, properties.reported.rebootTime AS lastReboot FROM devices WHERE deviceId IN ['device-0004', 'device-0005', 'device-0009']",
      ),
      [
        { deviceId: 'device-0004', region: 'EU', lastReboot: '2024-01-01T04:00:00.000Z' },
        { deviceId: 'device-0005', region: 'APAC' }, // no rebootTime: the field is left out
        { deviceId: 'device-0009' }, // no location at all
      ],
    );
  });

  test("names an unaliased field with the document's own spelling", () => {
    assert.deepEqual(runAll("SELECT DeviceId, STATUS, properties.reported.$version FROM devices WHERE deviceId = 'device-0004'"), [
      { deviceId: 'device-0004', status: 'enabled', $version: 5 },
    ]);
  });

  test('treats a property holding undefined as missing, as JSON would', () => {
    const twin = { deviceId: 'js-built', moduleId: undefined, tags: { floor: undefined } };
    const jsSource: QuerySource = { devices: () => [twin], modules: () => [], jobs: () => [] };
    assert.deepEqual(runAll('SELECT deviceId, moduleId, tags.floor FROM devices', jsSource), [{ deviceId: 'js-built' }]);
    assert.deepEqual(runAll('SELECT * FROM devices WHERE IS_DEFINED(tags.floor)', jsSource), []);
  });

  test('selects whole objects', () => {
    assert.deepEqual(runAll("SELECT tags.location AS place, capabilities FROM devices WHERE deviceId = 'device-0010'"), [
      { place: { region: 'EU', plant: 'plant-2' }, capabilities: { iotEdge: true } },
    ]);
  });

  test('rejects two columns with the same name', () => {
    assertHubError(
      () => executeQuery('SELECT properties.desired.$version, properties.reported.$version FROM devices', source),
      400020,
      "Duplicate column name '$version' at position 37: give one of them a name with AS",
    );
    assert.deepEqual(
      runAll("SELECT properties.desired.$version AS d, properties.reported.$version FROM devices WHERE deviceId = 'device-0003'"),
      [{ d: 2, $version: 4 }],
    );
  });

  test('rejects unknown functions, wrong argument counts and ungrouped fields beside aggregates', () => {
    assertHubError(
      () => executeQuery('SELECT * FROM devices WHERE LOWER(deviceId) = 1', source),
      400020,
      "Unknown function 'LOWER' at position 29",
    );
    assertHubError(
      () => executeQuery('SELECT * FROM devices WHERE STARTSWITH(deviceId)', source),
      400020,
      'STARTSWITH takes 2 arguments, not 1, at position 29',
    );
    assertHubError(
      () => executeQuery('SELECT deviceId, COUNT() FROM devices', source),
      400020,
      "'deviceId' at position 8 must appear in GROUP BY to be selected with an aggregate",
    );
    assertHubError(
      () => executeQuery('SELECT * FROM devices GROUP BY status', source),
      400020,
      'SELECT * cannot be used with GROUP BY at position 32',
    );
  });
});

describe('query aggregates', () => {
  const count = (predicate: (d: TwinDocument) => boolean) => devices.filter(predicate).length;

  test('counts with COUNT(), named $1 without an alias', () => {
    assert.deepEqual(runAll('SELECT COUNT() AS total FROM devices'), [{ total: devices.length }]);
    const disabled = count((d) => d.status === 'disabled');
    assert.ok(disabled > 0 && disabled < devices.length);
    assert.deepEqual(runAll("SELECT COUNT() FROM devices WHERE status = 'disabled'"), [{ $1: disabled }]);
    assert.deepEqual(runAll("SELECT COUNT() AS n FROM devices WHERE deviceId = 'none'"), [{ n: 0 }]);
  });

  test('groups by one field, with a row for twins that lack it', () => {
    const expected = new Map<unknown, number>();
    for (const d of devices) {
      const region = get(d, 'tags.location.region');
      expected.set(region, (expected.get(region) ?? 0) + 1);
    }
    assert.equal(expected.size, 4, 'three regions and the twins without one');
    const rows = [...expected].map(([region, n]) => (region === undefined ? { n } : { region, n }));
    assert.deepEqual(runAll('SELECT tags.location.region AS region, COUNT() AS n FROM devices GROUP BY tags.location.region'), rows);
  });

  test('groups by several fields, after WHERE', () => {
    const expected = new Map<string, { status: unknown; connectionState: unknown; $1: number }>();
    // A string floor is neither 0 nor "not 0": those twins drop out.
    for (const d of devices.filter((d) => typeof get(d, 'tags.floor') === 'number' && get(d, 'tags.floor') !== 0)) {
      const key = `${d.status}/${d.connectionState}`;
      const row = expected.get(key) ?? { status: d.status, connectionState: d.connectionState, $1: 0 };
      row.$1++;
      expected.set(key, row);
    }
    assert.equal(expected.size, 4);
    assert.deepEqual(
      runAll('SELECT status, connectionState, COUNT() FROM devices WHERE tags.floor != 0 GROUP BY status, connectionState'),
      [...expected.values()],
    );
  });

  test('groups without an aggregate, and keeps the SELECT order of columns', () => {
    assert.deepEqual(runAll('SELECT status FROM devices GROUP BY status'), [{ status: 'disabled' }, { status: 'enabled' }]);
    const [first] = runAll('SELECT COUNT() AS n, status FROM devices GROUP BY status') as TwinDocument[];
    assert.deepEqual(Object.keys(first), ['n', 'status']);
  });

  test('sums, averages and finds extremes over the numbers among the values', () => {
    const eu = devices.filter((d) => get(d, 'tags.location.region') === 'EU');
    const temperatures = eu.map((d) => get(d, 'properties.reported.temperature') as number);
    const floors = devices.map((d) => get(d, 'tags.floor')).filter((f): f is number => typeof f === 'number');
    const sum = temperatures.reduce((a, b) => a + b, 0);
    assert.deepEqual(
      runAll(
        "SELECT SUM(properties.reported.temperature) AS s, AVG(properties.reported.temperature) AS a, MIN(properties.reported.temperature) AS lo, MAX(properties.reported.temperature) AS hi FROM devices WHERE tags.location.region = 'EU'",
      ),
      [{ s: sum, a: sum / temperatures.length, lo: Math.min(...temperatures), hi: Math.max(...temperatures) }],
    );
    assert.deepEqual(runAll('SELECT SUM(tags.floor) AS s, MAX(tags.floor) AS m FROM devices'), [
      { s: floors.reduce((a, b) => a + b, 0), m: 4 },
    ]);
    assert.deepEqual(runAll('SELECT COUNT() AS n, SUM(tags.location) AS s FROM devices'), [{ n: devices.length }]);
  });
});

describe('module twin queries', () => {
  test('FROM devices.modules returns module twins only', () => {
    const all = runAll('SELECT * FROM devices.modules') as TwinDocument[];
    assert.equal(all.length, modules.length);
    assert.ok(all.every((m) => typeof m.moduleId === 'string'));
  });

  test('filters module twins by reported properties and device', () => {
    const ids = ['device-0000', 'device-0001', 'device-0002', 'device-0010'];
    const expected = modules
      .filter((m) => get(m, 'properties.reported.status') === 'scanning' && ids.includes(m.deviceId as string))
      .map((m) => ({ deviceId: m.deviceId, moduleId: m.moduleId }));
    assert.equal(expected.length, 3);
    assert.deepEqual(
      runAll(
        "SELECT deviceId, moduleId FROM devices.modules WHERE properties.reported.status = 'scanning' AND deviceId IN ['device-0000', 'device-0001', 'device-0002', 'device-0010']",
      ),
      expected,
    );
  });

  test('counts module twins per module id', () => {
    assert.deepEqual(runAll('SELECT moduleId, COUNT() AS n FROM devices.modules GROUP BY moduleId'), [
      { moduleId: 'sensor', n: 90 },
      { moduleId: 'edgeAgent', n: 30 },
    ]);
  });
});

describe('SELECT TOP', () => {
  test('returns at most n results, across pages', () => {
    const enabled = devices.filter((d) => d.status === 'enabled').map((d) => ({ deviceId: d.deviceId }));
    assert.deepEqual(runAll("SELECT TOP 5 deviceId FROM devices WHERE status = 'enabled'"), enabled.slice(0, 5));
    const pages: number[] = [];
    let continuationToken: string | undefined;
    do {
      const page = executeQuery("SELECT TOP 25 deviceId FROM devices WHERE status = 'enabled'", source, {
        pageSize: 10,
        continuationToken,
      });
      pages.push(page.items.length);
      continuationToken = page.continuationToken;
      assert.ok(pages.length <= 3, 'TOP 25 in pages of 10 is three pages');
    } while (continuationToken);
    assert.deepEqual(pages, [10, 10, 5]);
    assert.deepEqual(runAll('SELECT TOP 1 status, COUNT() AS n FROM devices GROUP BY status'), [
      { status: 'disabled', n: devices.filter((d) => d.status === 'disabled').length },
    ]);
  });
});

describe('query performance', () => {
  // How fast is the bench's business, not a test's: this checks the answers over a fleet that pages.
  test('answers over a few thousand twins as the plain JavaScript oracle does', () => {
    const big = fleet(3000);
    const inRegion = runAll(
      "SELECT * FROM devices WHERE tags.location.region IN ['US', 'EU'] AND properties.reported.temperature > 20",
      big.source,
    );
    const expected = big.devices.filter(
      (d) => ['US', 'EU'].includes(get(d, 'tags.location.region') as string) && (get(d, 'properties.reported.temperature') as number) > 20,
    );
    assert.ok(expected.length > 0 && expected.length < big.devices.length, 'the fixture selects some twins, not all');
    assert.deepEqual(
      (inRegion as TwinDocument[]).map((d) => d.deviceId),
      expected.map((d) => d.deviceId),
    );
    const groups = runAll(
      'SELECT tags.location.region AS region, COUNT() AS n FROM devices GROUP BY tags.location.region',
      big.source,
    ) as Array<{ n: number }>;
    assert.equal(
      groups.reduce((sum, g) => sum + g.n, 0),
      big.devices.length,
    );
  });
});
