import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HubError } from '../../src/hub/errors.js';
import { executeQuery, type QuerySource } from '../../src/hub/query/index.js';
import { parseQuery } from '../../src/hub/query/parser.js';
import { compileRouteCondition, type RoutedMessageView } from '../../src/hub/query/route-condition.js';

interface MessageParts {
  system?: Record<string, string | undefined>;
  app?: Record<string, string>;
  body?: unknown;
  twin?: unknown;
}

/** A message view that counts how often its body and twin are read. */
function message(parts: MessageParts = {}): RoutedMessageView & { reads: { body: number; twin: number } } {
  const reads = { body: 0, twin: 0 };
  return {
    system: parts.system ?? {},
    app: parts.app ?? {},
    body: () => {
      reads.body++;
      return parts.body;
    },
    twin: () => {
      reads.twin++;
      return parts.twin;
    },
    reads,
  };
}

const matches = (condition: string, parts: MessageParts = {}): boolean => compileRouteCondition(condition).matches(message(parts));

/** Asserts that each condition matches the message and that its negation does not. */
function expectTrue(parts: MessageParts, ...conditions: string[]): void {
  for (const condition of conditions) {
    assert.equal(matches(condition, parts), true, `expected a match: ${condition}`);
    assert.equal(matches(`NOT (${condition})`, parts), false, `expected no match: NOT (${condition})`);
  }
}

/** Asserts that neither the condition nor its negation matches: the condition is undefined. */
function expectUndefined(parts: MessageParts, ...conditions: string[]): void {
  for (const condition of conditions) {
    assert.equal(matches(condition, parts), false, `expected no match: ${condition}`);
    assert.equal(matches(`NOT (${condition})`, parts), false, `expected no match: NOT (${condition})`);
    assert.equal(matches(`IS_DEFINED(${condition})`, parts), false, `expected undefined: ${condition}`);
  }
}

function assertInvalid(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HubError, `expected a HubError, got ${String(e)}`);
    assert.equal(e.status, 400);
    assert.equal(e.errorCode, 400020);
    assert.equal(e.code, 'SqlQueryInvalid');
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

const system = {
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  connectionDeviceId: 'd1',
  connectionModuleId: undefined,
  enqueuedTime: '2022-06-07T10:00:00.000Z',
  messageId: 'm-1',
  'dt-dataschema': 'dtmi:x;1',
  'dt-subject': 'thermostat1',
};

const weather = {
  Weather: {
    Temperature: 50,
    Time: '2017-03-09T00:00:00.000Z',
    PrevTemperatures: [20, 30, 40],
    IsEnabled: true,
    Location: { Street: 'One Microsoft Way', City: 'Redmond', State: 'WA' },
    HistoricalData: [
      { Month: 'Feb', Temperature: 40 },
      { Month: 'Jan', Temperature: 30 },
    ],
    Grid: [
      [1, 2],
      [3, 4],
    ],
  },
};

describe('route conditions: properties', () => {
  test('$name reads system properties, including $dt-dataschema and $dt-subject', () => {
    expectTrue(
      { system },
      "$contentType = 'application/json'",
      "$contentEncoding = 'utf-8'",
      "$connectionDeviceId = 'd1'",
      "$enqueuedTime > '2022-06-06T22:56:06Z'",
      "$messageId = 'm-1'",
      "$dt-dataschema = 'dtmi:x;1'",
      "$dt-subject = 'thermostat1'",
      "STARTS_WITH($dt-dataschema, 'dtmi:')",
    );
    assert.equal(matches("$enqueuedTime > '2022-06-08'", { system }), false);
    expectUndefined({ system }, "$connectionModuleId = 'm'", "$correlationId = 'c'");
  });

  test('system keywords match case-insensitively, the exact spelling first', () => {
    expectTrue({ system }, "$CONTENTTYPE = 'application/json'", "$ConnectionDeviceID = 'd1'", "$DT-DATASCHEMA = 'dtmi:x;1'");
    expectTrue({ system: { userId: 'exact', USERID: 'upper' } }, "$userId = 'exact'", "$USERID = 'upper'");
  });

  test('a $name the message has no system property for is looked up among the application properties', () => {
    expectTrue({ system, app: { $custom: 'v', '$dt-x': 'y' } }, "$custom = 'v'", "$CUSTOM = 'v'", "$dt-x = 'y'");
    // A system property wins over an application property of the same name; an absent one does not.
    expectTrue(
      { system, app: { $messageId: 'app', $connectionModuleId: 'app-module' } },
      "$messageId = 'm-1'",
      "$connectionModuleId = 'app-module'",
    );
    // Without the '$' an application property is a bare name, and a system property is not.
    expectUndefined({ system, app: { $custom: 'v' } }, "custom = 'v'", "contentType = 'application/json'");
  });

  test('a hyphen between name characters is part of a name in a $ path; elsewhere, or spaced, it subtracts', () => {
    expectTrue({ body: { a: 5, b: 2 } }, '$body.a-$body.b = 3', '$body.a - 1 = 4');
    expectTrue({ body: { 'sensor-id': 'x', readings: [{ 'max-value': 9 }] } }, "$body.sensor-id = 'x'", '$body.readings[0].max-value = 9');
    expectTrue({ twin: { tags: { 'floor-no': 3 }, properties: { reported: { $version: 5 } } } }, '$twin.tags.floor-no = 3');
    expectTrue({ twin: { properties: { reported: { $version: 5 } } } }, '$twin.properties.reported.$version - 1 = 4');
    expectTrue({ app: { level: '3' } }, "level = '3' AND NOT IS_DEFINED(level-1)");
    // Twin queries keep a-b a subtraction even after $.
    const where = parseQuery('SELECT * FROM devices WHERE $a-b = 1').where;
    assert.equal(where?.kind === 'compare' && where.left.kind, 'arithmetic');
  });

  test('a bare name reads an application property, case-insensitively, the exact spelling first', () => {
    const app = { processingPath: 'hot', opType: 'updateTwin', level: '3', Mode: 'a', mode: 'b' };
    expectTrue(
      { app },
      "processingPath = 'hot'",
      "PROCESSINGPATH = 'hot'",
      "opType = 'updateTwin'",
      "optype IN ['updateTwin', 'deleteTwin']",
      "Mode = 'a'",
      "mode = 'b'",
      "[[level]] = '3'",
    );
    // Application properties are strings: no coercion.
    expectUndefined({ app }, 'level = 3', "processingPath.x = 'hot'", "missing = 'x'");
  });

  test('a missing property makes a comparison undefined: NOT does not turn it into a match', () => {
    assert.equal(matches("NOT (color = 'red')", { app: { color: 'blue' } }), true);
    assert.equal(matches("NOT (color = 'red')", {}), false);
    assert.equal(matches("color != 'red'", {}), false);
    assert.equal(matches("color = 'red' OR true", {}), true);
    assert.equal(matches("color = 'red' AND true", {}), false);
    assert.equal(matches("NOT (color = 'red' AND false)", {}), true);
  });

  test('true matches every message, false none, and only exactly true matches', () => {
    for (const parts of [{}, { system, app: { a: 'b' }, body: weather }]) {
      assert.equal(matches('true', parts), true);
      assert.equal(matches('TRUE', parts), true);
      assert.equal(matches('false', parts), false);
    }
    assert.equal(matches('null', {}), false);
    assert.equal(matches('1', {}), false);
    assert.equal(matches('$body.flag', { body: { flag: 'true' } }), false);
    assert.equal(matches('$body.flag', { body: { flag: true } }), true);
  });
});

describe('route conditions: body and twin', () => {
  test('$body paths read the JSON body, case-insensitively', () => {
    expectTrue(
      { body: weather },
      '$body.Weather.Temperature = 50',
      '$body.weather.temperature = 50',
      "$body.Weather.Location.State = 'WA'",
      '$body.Weather.IsEnabled = true',
      '$body.Weather.Temperature * 2 - 10 > 80',
      "$body.Weather.Time >= '2017-03-09'",
      'length($body.Weather.Location.State) = 2',
      'IS_ARRAY($body.Weather.PrevTemperatures)',
    );
  });

  test('$body paths index arrays', () => {
    expectTrue(
      { body: weather },
      "$body.Weather.HistoricalData[0].Month = 'Feb'",
      "$body.Weather.HistoricalData[1].month = 'Jan'",
      '$body.Weather.HistoricalData[1].Temperature = 30',
      '$body.Weather.PrevTemperatures[2] = 40',
      '$body.Weather.Grid[1][0] = 3',
      'IS_OBJECT($body.Weather.HistoricalData[0])',
    );
    expectUndefined(
      { body: weather },
      "$body.Weather.HistoricalData[2].Month = 'Mar'",
      '$body.Weather.Location[0] = 1',
      "$body.Weather.HistoricalData.Month = 'Feb'",
      '$body.Weather.Grid[0][5] = 1',
    );
  });

  test('$body alone, $body[0] and the body of a message that is not JSON are undefined', () => {
    expectUndefined({ body: weather }, '$body', '$body = 1');
    expectUndefined({ body: [1, 2] }, '$body[0] = 1');
    expectUndefined({ body: undefined }, '$body.Weather.Temperature = 50');
    assert.equal(matches('NOT IS_DEFINED($body.Weather)', { body: undefined }), true);
    assert.equal(matches('NOT IS_DEFINED($body.Weather)', { body: weather }), false);
  });

  test('the body is read only when the condition names it, and at most once per message', () => {
    const plain = message({ system, body: weather });
    assert.equal(compileRouteCondition("$contentType = 'application/json'").matches(plain), true);
    assert.equal(plain.reads.body, 0);

    const twice = compileRouteCondition("$body.Weather.Temperature = 50 AND $body.Weather.Location.City = 'Redmond'");
    const m = message({ body: weather });
    assert.equal(twice.matches(m), true);
    assert.equal(m.reads.body, 1);
    assert.equal(twice.matches(m), true);
    assert.equal(m.reads.body, 2, 'each matches() reads the body afresh');

    const shortCircuit = message({ body: weather });
    assert.equal(compileRouteCondition('false AND $body.Weather.Temperature = 50').matches(shortCircuit), false);
    assert.equal(shortCircuit.reads.body, 0);
  });

  test('$twin paths read the twin, once, and only when the condition reaches one', () => {
    const twin = {
      tags: { building: '43', floor: 2 },
      properties: { desired: { fw: '1.2' }, reported: { telemetryConfig: { status: 'Success' } } },
    };
    expectTrue(
      { twin },
      "$twin.tags.building = '43'",
      '$twin.tags.Floor = 2',
      "$twin.properties.desired.fw = '1.2'",
      "$twin.properties.reported.telemetryConfig.status = 'Success'",
    );
    expectUndefined({ twin: undefined }, "$twin.tags.building = '43'");
    expectUndefined({ twin }, "$twin.tags.room = '1'", '$twin');

    const once = message({ twin });
    assert.equal(compileRouteCondition("$twin.tags.building = '43' AND $twin.tags.floor = 2").matches(once), true);
    assert.equal(once.reads.twin, 1);
    const never = message({ system, twin });
    assert.equal(compileRouteCondition("$connectionDeviceId = 'd1'").matches(never), true);
    assert.equal(never.reads.twin, 0);
  });
});

describe('route conditions: functions', () => {
  test('the twin query functions work in routing conditions', () => {
    expectTrue(
      { system, body: weather },
      'IS_STRING($contentType)',
      "STARTSWITH($connectionDeviceId, 'd')",
      "ENDS_WITH($dt-subject, '1')",
      "CONTAINS($body.Weather.Location.City, 'edm')",
      'IS_NUMBER($body.Weather.Temperature)',
    );
  });

  test('math functions take numbers, and give undefined for anything else or a result JSON cannot hold', () => {
    const body = { neg: -2.5, four: 4, text: '4' };
    expectTrue(
      { body },
      'ABS($body.neg) = 2.5',
      'abs(3) = 3',
      'EXP(0) = 1',
      'POWER($body.four, 0.5) = 2',
      'SQUARE($body.neg) = 6.25',
      'CEILING($body.neg) = -2',
      'FLOOR($body.neg) = -3',
      'SIGN($body.neg) = -1',
      'SIGN(0) = 0',
      'SQRT($body.four) = 2',
    );
    expectUndefined(
      { body },
      'ABS($body.text) = 4',
      "EXP('1') = 1",
      'POWER($body.text, 2) = 16',
      "POWER(2, '2') = 4",
      'SQUARE(true) = 1',
      'CEILING(null) = 0',
      'FLOOR($body.missing) = 0',
      "SIGN('-1') = -1",
      'SQRT($body.text) = 2',
      'SQRT(-4) = 2',
      'EXP(1000) > 0',
      'POWER(0, -1) > 0',
      'POWER(-8, 0.5) > 0',
    );
  });

  test('AS_NUMBER converts a string holding a JSON number', () => {
    expectTrue(
      { app: { level: '3', temp: '-1.5e2' } },
      'AS_NUMBER(level) = 3',
      'AS_NUMBER(level) > 2',
      'AS_NUMBER(temp) = -150',
      "AS_NUMBER(' 7 ') = 7",
      'AS_NUMBER(42) = 42',
    );
    expectUndefined(
      { app: { word: 'three' } },
      'AS_NUMBER(word) = 3',
      "AS_NUMBER('0x10') = 16",
      "AS_NUMBER('1e400') > 0",
      "AS_NUMBER('') = 0",
      'AS_NUMBER(true) = 1',
      'AS_NUMBER(missing) = 1',
    );
  });

  test('string functions take strings', () => {
    const app = { name: 'Thermostat', empty: '' };
    expectTrue(
      { app },
      "LOWER(name) = 'thermostat'",
      "UPPER(name) = 'THERMOSTAT'",
      'LENGTH(name) = 10',
      'LENGTH(empty) = 0',
      "CONCAT(name, '-', 'x') = 'Thermostat-x'",
      "CONCAT('a', 'b') = 'ab'",
      "SUBSTRING(name, 1, 4) = 'herm'",
      "SUBSTRING(name, 6) = 'stat'",
      "SUBSTRING(name, 20) = ''",
      "INDEX_OF(name, 'stat') = 6",
      "INDEX_OF(name, 'x') = -1",
      "lower(upper(name)) = 'thermostat'",
    );
    expectUndefined(
      { app, body: { n: 5 } },
      "LOWER($body.n) = '5'",
      "UPPER(missing) = 'X'",
      'LENGTH($body.n) = 1',
      "CONCAT(name, $body.n) = 'Thermostat5'",
      "CONCAT(name, missing) = 'Thermostat'",
      "SUBSTRING($body.n, 0) = '5'",
      "SUBSTRING(name, '1') = 'hermostat'",
      "SUBSTRING(name, -1) = 't'",
      "SUBSTRING(name, 1.5) = 'hermostat'",
      "SUBSTRING(name, 0, missing) = 'Thermostat'",
      "SUBSTRING(name, 0, -1) = ''",
      'INDEX_OF(name, $body.n) = -1',
      "INDEX_OF($body.n, 'x') = -1",
    );
  });

  test('function names are case-insensitive, and unknown functions and wrong argument counts are 400s', () => {
    assert.equal(matches("Concat('a', 'b') = 'ab' AND index_of('ab', 'b') = 1"), true);
    assertInvalid(() => compileRouteCondition('FOO(1) = 1'), "Unknown function 'FOO' at position 1");
    assertInvalid(() => compileRouteCondition('true OR COUNT() = 1'), "Unknown function 'COUNT' at position 9");
    assertInvalid(() => compileRouteCondition("CONCAT('a') = 'a'"), 'CONCAT takes 2 or more arguments, not 1, at position 1');
    assertInvalid(() => compileRouteCondition("SUBSTRING('a', 0, 1, 2) = 'a'"), 'SUBSTRING takes 2 to 3 arguments, not 4, at position 1');
    assertInvalid(() => compileRouteCondition('x = 1 AND LOWER() = 1'), 'LOWER takes 1 argument, not 0, at position 11');
    assertInvalid(() => compileRouteCondition('POWER(2) = 4'), 'POWER takes 2 arguments, not 1, at position 1');
  });

  test('twin queries still reject the routing-only functions as unknown', () => {
    const none: QuerySource = { devices: () => [], modules: () => [], jobs: () => [] };
    for (const fn of ['LOWER(deviceId)', 'CONCAT(deviceId, deviceId)', 'ABS(version)', 'AS_NUMBER(deviceId)', 'LENGTH(deviceId)']) {
      const name = fn.slice(0, fn.indexOf('('));
      assertInvalid(() => executeQuery(`SELECT * FROM devices WHERE ${fn} = 1`, none), `Unknown function '${name}' at position 29`);
    }
  });
});

describe('route conditions: errors', () => {
  test('a condition that does not parse is a 400 SqlQueryInvalid naming the position', () => {
    assertInvalid(
      () => compileRouteCondition("$contentType = 'a' 'b'"),
      "Syntax error at position 20 near ''b'': expected end of condition",
    );
    assertInvalid(
      () => compileRouteCondition('$contentType ='),
      'Syntax error at position 15 near end of query: expected a value, a property or a function',
    );
    assertInvalid(() => compileRouteCondition('a = 1 AND (b = 2'), 'Syntax error at position 17 near end of query: expected )');
    assertInvalid(
      () => compileRouteCondition("processingPath = 'hot"),
      /^Syntax error at position 18 near ''hot': unterminated string literal$/,
    );
    assertInvalid(
      () => compileRouteCondition('SELECT * FROM devices'),
      "Syntax error at position 1 near 'SELECT': expected a property name ('SELECT' is a keyword; escape it as [[SELECT]])",
    );
    assertInvalid(() => compileRouteCondition('a = 1 GROUP BY a'), "Syntax error at position 7 near 'GROUP': expected end of condition");
    assertInvalid(
      () => compileRouteCondition(''),
      'Syntax error at position 1 near end of query: expected a value, a property or a function',
    );
    assertInvalid(
      () => compileRouteCondition('$body.a[x] = 1'),
      "Syntax error at position 9 near 'x': expected an array index (a whole number)",
    );
    assertInvalid(
      () => compileRouteCondition('$body.a[-1] = 1'),
      "Syntax error at position 9 near '-': expected an array index (a whole number)",
    );
    assertInvalid(() => compileRouteCondition('$body.a[0 = 1'), "Syntax error at position 11 near '=': expected ]");
    assertInvalid(
      () => compileRouteCondition('$twin.tags.a[0] = 1'),
      "Syntax error at position 13 near '[': array indexes are allowed in $body paths only",
    );
    assertInvalid(
      () => compileRouteCondition('level[0] = 1'),
      "Syntax error at position 6 near '[': array indexes are allowed in $body paths only",
    );
  });

  test('a condition is at most 1024 characters long', () => {
    const fill = (length: number) => `$messageId = '${'x'.repeat(length - 15)}'`;
    assert.equal(fill(1024).length, 1024);
    assert.equal(compileRouteCondition(fill(1024)).matches(message({ system: { messageId: 'x'.repeat(1009) } })), true);
    assertInvalid(() => compileRouteCondition(fill(1025)), 'Route condition is 1025 characters long; the maximum is 1024');
    assertInvalid(
      () => compileRouteCondition(`${'true OR '.repeat(1000)}true`),
      'Route condition is 8004 characters long; the maximum is 1024',
    );
  });
});
