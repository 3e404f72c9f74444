import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HubError } from '../../src/hub/errors.js';
import type { JsonObject } from '../../src/hub/twins/json.js';
import { checkSectionSize, sectionSize, twinLimits, validateSection } from '../../src/hub/twins/limits.js';

/** Asserts a 400 ArgumentInvalid whose message contains `fragment`. */
function rejects(fn: () => void, fragment: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HubError);
    assert.equal(err.status, 400);
    assert.equal(err.code, 'ArgumentInvalid');
    assert.ok(err.message.includes(fragment), `"${err.message}" should mention "${fragment}"`);
    return true;
  });
}

/** An object nested `levels` deep below the section: { l1: { l2: ... { l<levels>: leaf } } }. */
function nested(levels: number, leaf: JsonObject['x']): JsonObject {
  let value = leaf;
  for (let level = levels; level >= 1; level--) value = { [`l${level}`]: value };
  return value as JsonObject;
}

describe('twin key rules', () => {
  for (const [key, problem] of [
    ['a.b', "'.'"],
    ['$a', "'$'"],
    ['a b', 'space'],
    ['a\u0007b', 'control character'],
    ['a\u0085b', 'control character'],
    ['', 'empty'],
  ]) {
    test(`rejects the key ${JSON.stringify(key)}, naming it, at the top and nested`, () => {
      rejects(() => validateSection('properties.desired', { [key!]: 1 }), `'${key}'`);
      rejects(() => validateSection('tags', { outer: { [key!]: 1 } }), problem!);
    });
  }

  test('accepts keys up to 1 KB of UTF-8 and rejects longer ones', () => {
    validateSection('tags', { ['k'.repeat(1024)]: 1 });
    validateSection('tags', { ['é'.repeat(512)]: 1 }); // 1024 bytes
    rejects(() => validateSection('tags', { ['k'.repeat(1025)]: 1 }), '1024 bytes');
    rejects(() => validateSection('tags', { ['é'.repeat(513)]: 1 }), '1024 bytes');
  });

  test('checks keys inside arrays of objects too', () => {
    rejects(() => validateSection('properties.reported', { list: [{ ok: 1 }, { 'no.dot': 1 }] }), "'no.dot'");
  });
});

describe('twin value rules', () => {
  test('accepts strings up to 4 KB of UTF-8 and rejects longer ones, in arrays too', () => {
    validateSection('tags', { s: 'x'.repeat(4096) });
    rejects(() => validateSection('tags', { s: 'x'.repeat(4097) }), 'tags.s');
    rejects(() => validateSection('tags', { s: '€'.repeat(1366) }), '4096 bytes'); // 4098 bytes
    rejects(() => validateSection('tags', { list: ['ok', 'x'.repeat(4097)] }), 'tags.list[1]');
  });

  test('accepts integers within IoT Hub range and rejects those beyond it', () => {
    validateSection('tags', { min: twinLimits.minInteger, max: twinLimits.maxInteger, f: 1e15 + 0.5 });
    rejects(() => validateSection('tags', { n: twinLimits.maxInteger + 1 }), 'tags.n');
    rejects(() => validateSection('tags', { n: twinLimits.minInteger - 1 }), 'tags.n');
  });

  test('rejects numbers JSON cannot carry (1e400 parses as Infinity) and text that is not well-formed Unicode', () => {
    rejects(
      () => validateSection('properties.reported', JSON.parse('{"n":1e400}')),
      'properties.reported.n: the number is out of the range',
    );
    rejects(() => validateSection('tags', { list: [1, -Infinity] }), 'tags.list[1]');
    rejects(() => validateSection('tags', JSON.parse('{"s":"a\\ud800"}')), 'tags.s: the string is not well-formed Unicode');
    rejects(() => validateSection('tags', JSON.parse('{"\\udc00":1}')), 'not well-formed Unicode');
    validateSection('tags', { emoji: '\u{1F600}', ['\u{1F600}']: 1 }); // a surrogate pair is one character
  });

  test('rejects values that are not JSON', () => {
    rejects(() => validateSection('tags', { f: (() => 1) as unknown as JsonObject['x'] }), 'not a JSON value');
  });
});

describe('twin depth rule', () => {
  test('accepts the docs example: objects down to level 10, the last one holding a leaf', () => {
    validateSection('tags', nested(10, { property: 'value' }));
    validateSection('tags', nested(10, [1, 2]));
  });

  test('rejects an object or an array at level 11', () => {
    rejects(() => validateSection('tags', nested(10, { a: { b: 1 } })), 'tags.l1.l2.l3.l4.l5.l6.l7.l8.l9.l10.a:');
    rejects(() => validateSection('tags', nested(10, { a: {} })), 'nested at most 10');
    rejects(() => validateSection('tags', nested(10, { a: [] })), 'nested at most 10');
  });

  test('counts an array as a level', () => {
    validateSection('tags', nested(9, [{ leaf: 1 }]));
    rejects(() => validateSection('tags', nested(10, [{ leaf: 1 }])), 'nested at most 10');
  });
});

describe('twin section size', () => {
  test('counts keys as UTF-8, strings without control characters, numbers 8, booleans 4, nested sums', () => {
    assert.equal(sectionSize({}), 0);
    assert.equal(sectionSize({ ab: 'xyz' }), 5);
    assert.equal(sectionSize({ ab: 'x\u0001\u0002y' }), 4);
    assert.equal(sectionSize({ é: 'é' }), 4);
    assert.equal(sectionSize({ n: 1.5, b: false }), 1 + 8 + 1 + 4);
    assert.equal(sectionSize({ o: { a: 1, b: 'cd' } }), 1 + (1 + 8) + (1 + 2));
    assert.equal(sectionSize({ l: [1, 'ab', true, null, { k: 'v' }] }), 1 + 8 + 2 + 4 + 4 + 2);
  });

  test('accepts a section at the limit and rejects one byte more, naming section and limit', () => {
    const atLimit = { k: 'x'.repeat(8191) };
    checkSectionSize('tags', atLimit, twinLimits.tagsBytes);
    assert.throws(
      () => checkSectionSize('tags', { k: 'x'.repeat(8192) }, twinLimits.tagsBytes),
      (err: unknown) => err instanceof HubError && err.status === 400 && /tags would be 8193 bytes.*8192 bytes \(8 KB\)/.test(err.message),
    );
  });
});
