import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HubError } from '../../src/hub/errors.js';
import { executeQuery } from '../../src/hub/query/index.js';
import { MAX_QUERY_NESTING, parseQuery } from '../../src/hub/query/parser.js';

/** Asserts an IoT Hub SqlQueryInvalid 400 with exactly this message. */
function assertInvalid(text: string, message: string): void {
  assert.throws(
    () => parseQuery(text),
    (e: unknown) => {
      assert.ok(e instanceof HubError, `expected a HubError, got ${String(e)}`);
      assert.equal(e.status, 400);
      assert.equal(e.errorCode, 400020);
      assert.equal(e.message, message);
      return true;
    },
  );
}

const path = (offset: number, ...segments: string[]) => ({ kind: 'path', segments, offset });

describe('query parser', () => {
  test('parses every clause into the AST', () => {
    const ast = parseQuery(
      "SELECT TOP 5 tags.location.region AS region, COUNT() AS n FROM devices.modules WHERE status = 'enabled' GROUP BY tags.location.region",
    );
    assert.deepEqual(ast, {
      top: 5,
      select: [
        { kind: 'field', path: path(13, 'tags', 'location', 'region'), alias: 'region' },
        { kind: 'aggregate', name: 'COUNT', arg: undefined, alias: 'n', offset: 45 },
      ],
      from: 'devices.modules',
      where: {
        kind: 'compare',
        op: '=',
        left: path(85, 'status'),
        right: { kind: 'literal', value: 'enabled', offset: 94 },
        offset: 92,
      },
      groupBy: [path(113, 'tags', 'location', 'region')],
    });
  });

  test('binds NOT tighter than AND, and AND tighter than OR', () => {
    const ast = parseQuery('SELECT * FROM devices WHERE a = 1 OR NOT b = 2 AND c = 3');
    const where = ast.where!;
    assert.equal(where.kind, 'logical');
    assert.equal(where.kind === 'logical' && where.op, 'OR');
    const right = where.kind === 'logical' ? where.right : undefined;
    assert.equal(right?.kind === 'logical' && right.op, 'AND');
    assert.equal(right?.kind === 'logical' && right.left.kind, 'not');
    assert.equal(right?.kind === 'logical' && right.right.kind, 'compare');
  });

  test('binds * tighter than + and arithmetic tighter than comparison', () => {
    const where = parseQuery('SELECT * FROM devices WHERE a + b * 2 > 10').where!;
    assert.equal(where.kind, 'compare');
    const left = where.kind === 'compare' ? where.left : undefined;
    assert.equal(left?.kind === 'arithmetic' && left.op, '+');
    assert.equal(left?.kind === 'arithmetic' && left.right.kind === 'arithmetic' && left.right.op, '*');
  });

  test('reads keywords in any case and <> as !=', () => {
    const ast = parseQuery("select * from DEVICES where Status <> 'disabled' group BY status");
    assert.equal(ast.from, 'devices');
    assert.equal(ast.where?.kind === 'compare' && ast.where.op, '!=');
    assert.equal(ast.groupBy.length, 1);
  });

  test('reads string, number, boolean and null literals', () => {
    const literal = (text: string) => {
      const where = parseQuery(`SELECT * FROM devices WHERE x = ${text}`).where!;
      assert.equal(where.kind, 'compare');
      const right = where.kind === 'compare' ? where.right : undefined;
      assert.equal(right?.kind, 'literal');
      return right?.kind === 'literal' ? right.value : undefined;
    };
    assert.equal(literal(`'it\\'s'`), "it's");
    assert.equal(literal(`"say \\"hi\\" \\\\ \\u0041"`), 'say "hi" \\ A');
    assert.equal(literal(`'double " inside single'`), 'double " inside single');
    assert.equal(literal('42'), 42);
    assert.equal(literal('2.5e2'), 250);
    assert.equal(literal('0x1F'), 31);
    assert.equal(literal('TRUE'), true);
    assert.equal(literal('false'), false);
    assert.equal(literal('Null'), null);
  });

  test('reads IN and NIN lists, with negative numbers', () => {
    const where = parseQuery("SELECT * FROM devices WHERE x NIN ['a', -3, null, true]").where!;
    assert.deepEqual(where.kind === 'in' && [where.negated, where.list], [true, ['a', -3, null, true]]);
  });

  test('takes [[escaped]] property names, even keywords', () => {
    const where = parseQuery("SELECT * FROM devices WHERE tags.[[group]].[[my prop]] = 'a'").where!;
    assert.deepEqual(where.kind === 'compare' && where.left, path(28, 'tags', 'group', 'my prop'));
  });

  test('keeps $ in property names ($metadata, $version)', () => {
    const where = parseQuery('SELECT * FROM devices WHERE properties.reported.$version > 2').where!;
    assert.deepEqual(where.kind === 'compare' && where.left, path(28, 'properties', 'reported', '$version'));
  });

  describe('rejects bad syntax with the position and the text found there', () => {
    const cases: [string, string][] = [
      ['SELECT deviceId FORM devices', "Syntax error at position 17 near 'FORM': expected FROM"],
      ['SELECT * FROM devices WHERE status =', 'Syntax error at position 37 near end of query: expected a value, a property or a function'],
      ["SELECT * FROM devices WHERE (status = 'a'", 'Syntax error at position 42 near end of query: expected )'],
      ["SELECT * FROM devices WHERE status = 'a", "Syntax error at position 38 near ''a': unterminated string literal"],
      ['SELECT * FROM devices WHERE status # 1', "Syntax error at position 36 near '#': unexpected character"],
      [
        "SELECT * FROM devices WHERE x = 'a\\q'",
        "Syntax error at position 35 near '\\q': invalid escape sequence (allowed: \\' \\\" \\\\ \\uXXXX)",
      ],
      ['SELECT * FROM devices WHERE 12abc = 1', "Syntax error at position 29 near '12a': malformed number"],
      [
        "SELECT * FROM devices WHERE tags.group = 'a'",
        "Syntax error at position 34 near 'group': expected a property name after . ('group' is a keyword; escape it as [[group]])",
      ],
      ['SELECT * FROM devices ORDER BY deviceId', "Syntax error at position 23 near 'ORDER': expected WHERE, GROUP BY or end of query"],
      ['SELECT * FROM devices WHERE a = 1 LIMIT 5', "Syntax error at position 35 near 'LIMIT': expected GROUP BY or end of query"],
      ["SELECT * FROM devices WHERE x IN ('a')", "Syntax error at position 34 near '(': expected ["],
      ['SELECT * FROM devices WHERE x IN [a]', "Syntax error at position 35 near 'a': expected a constant"],
      ['SELECT TOP x * FROM devices', "Syntax error at position 12 near 'x': expected a whole number after TOP"],
      [
        'SELECT deviceId AS FROM devices',
        "Syntax error at position 20 near 'FROM': expected an alias after AS ('FROM' is a keyword; escape it as [[FROM]])",
      ],
      ['SELECT COUNT(deviceId) FROM devices', "Syntax error at position 14 near 'deviceId': expected )"],
      ['SELECT * FROM devices WHERE COUNT() > 1', "Syntax error at position 29 near 'COUNT': aggregate COUNT() is only allowed in SELECT"],
      ['SELECT * FROM devices GROUP deviceId', "Syntax error at position 29 near 'deviceId': expected BY"],
      ['FROM devices', "Syntax error at position 1 near 'FROM': expected SELECT"],
      ['SELECT * FROM jobs', "Unknown collection 'jobs' at position 15: expected devices, devices.modules or devices.jobs"],
      ['SELECT deviceId FROM devices.jobs', 'Queries on devices.jobs support SELECT * only: projections and aggregates are not supported'],
    ];
    for (const [text, message] of cases) test(text, () => assertInvalid(text, message));
  });

  test('rejects a query longer than IoT Hub allows (8192 characters)', () => {
    const text = `SELECT * FROM devices WHERE deviceId = '${'x'.repeat(8192)}'`;
    assertInvalid(text, `Query is ${text.length} characters long; the maximum is 8192`);
  });

  test('rejects a number literal that no JSON number can hold', () => {
    assertInvalid('SELECT * FROM devices WHERE x = 1e400', "Syntax error at position 33 near '1e400': number out of range");
  });
});

describe('query nesting bound', () => {
  const where = 'SELECT * FROM devices WHERE ';
  const twin = { deviceId: 'd', tags: { a: 1 } };
  const matches = (text: string) => executeQuery(text, { devices: () => [twin], modules: () => [], jobs: () => [] }).items.length === 1;
  const nests: Record<string, (n: number) => string> = {
    parentheses: (n) => `${'('.repeat(n)}tags.a = 1${')'.repeat(n)}`,
    NOT: (n) => `${'NOT '.repeat(n)}tags.a = 1`, // true for an even n
    'unary minus': (n) => `tags.a = ${'-'.repeat(n)}1`, // likewise
    'function calls': (n) => `${'IS_DEFINED('.repeat(n)}tags.a${')'.repeat(n)}`,
  };
  for (const [what, nest] of Object.entries(nests)) {
    test(`evaluates ${what} nested ${MAX_QUERY_NESTING} deep and refuses one level more with a 400, not a stack overflow`, () => {
      assert.equal(MAX_QUERY_NESTING % 2, 0, 'the NOT and minus cases expect an even bound');
      assert.ok(matches(where + nest(MAX_QUERY_NESTING)));
      assert.throws(
        () => parseQuery(where + nest(MAX_QUERY_NESTING + 1)),
        (e: unknown) => {
          assert.ok(e instanceof HubError && e.status === 400 && e.errorCode === 400020, String(e));
          assert.match(e.message, new RegExp(`nested more than ${MAX_QUERY_NESTING} levels deep at position \\d+`));
          return true;
        },
      );
      for (const depth of [1_000, 4_000]) assert.throws(() => parseQuery(where + nest(depth)), HubError);
    });
  }

  test('evaluates chains as long as 8192 characters allow: they do not nest', () => {
    const longest = (unit: string, last: string) =>
      where + unit.repeat(Math.floor((8192 - where.length - last.length) / unit.length)) + last;
    assert.ok(matches(longest('tags.b = 1 OR ', 'tags.a = 1')));
    assert.ok(matches(longest('tags.a = 1 AND ', 'tags.a = 1')));
    assert.ok(matches(longest('0 + ', 'tags.a = 1')));
    assert.ok(matches(longest('1 * ', 'tags.a = 1')));
  });
});
