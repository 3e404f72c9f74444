import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mergePatch } from '../../src/hub/twins/merge-patch.js';
import { stampMetadata } from '../../src/hub/twins/metadata.js';

describe('twin merge patch', () => {
  test('merges nested objects and keeps untouched keys', () => {
    const merged = mergePatch({ a: 1, cfg: { x: 1, y: { z: 2 } } }, { cfg: { y: { w: 3 } }, b: true });
    assert.deepEqual(merged, { a: 1, cfg: { x: 1, y: { z: 2, w: 3 } }, b: true });
  });

  test('removes keys set to null, at any depth, and ignores nulls for absent keys', () => {
    const merged = mergePatch({ a: 1, cfg: { x: 1, y: 2 } }, { a: null, cfg: { x: null }, ghost: null });
    assert.deepEqual(merged, { cfg: { y: 2 } });
  });

  test('replaces arrays wholesale instead of merging them', () => {
    const merged = mergePatch({ list: [1, 2, 3], objs: [{ a: 1 }] }, { list: [9], objs: [{ b: 2 }] });
    assert.deepEqual(merged, { list: [9], objs: [{ b: 2 }] });
  });

  test('replaces a leaf with an object and an object with a leaf, dropping nulls inside new objects', () => {
    const merged = mergePatch({ a: 5, b: { c: 1 } }, { a: { x: 1, gone: null }, b: 'flat' });
    assert.deepEqual(merged, { a: { x: 1 }, b: 'flat' });
  });

  test('does not modify its arguments', () => {
    const target = { cfg: { x: 1, y: 1 }, gone: 1 };
    const patch = { cfg: { x: 2, y: null }, gone: null };
    assert.deepEqual(mergePatch(target, patch), { cfg: { x: 2 } });
    assert.deepEqual(target, { cfg: { x: 1, y: 1 }, gone: 1 });
    assert.deepEqual(patch, { cfg: { x: 2, y: null }, gone: null });
  });

  test('treats "__proto__" as an ordinary key', () => {
    const merged = mergePatch({}, JSON.parse('{"__proto__": {"polluted": true}}'));
    assert.equal(Object.getPrototypeOf(merged), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(Object.keys(merged), ['__proto__']);
  });
});

describe('twin $metadata', () => {
  const t1 = { $lastUpdated: '2024-01-01T00:00:00.000Z', $lastUpdatedVersion: 2 };
  const t2 = { $lastUpdated: '2024-01-02T00:00:00.000Z', $lastUpdatedVersion: 3 };

  test('stamps every node on the patch paths, the root included', () => {
    const metadata = stampMetadata({ $lastUpdated: 'created' }, { cfg: { x: 1 }, a: 'v' }, t1);
    assert.deepEqual(metadata, { ...t1, cfg: { ...t1, x: t1 }, a: t1 });
  });

  test('keeps the stamps of nodes a later patch does not touch', () => {
    const first = stampMetadata({}, { cfg: { x: 1, y: 2 }, a: 'v' }, t1);
    const second = stampMetadata(first, { cfg: { y: 3 } }, t2);
    assert.deepEqual(second, { ...t2, cfg: { ...t2, x: t1, y: t2 }, a: t1 });
  });

  test('drops the metadata of removed keys and stamps their parent', () => {
    const first = stampMetadata({}, { cfg: { x: 1, y: 2 } }, t1);
    const second = stampMetadata(first, { cfg: { x: null } }, t2);
    assert.deepEqual(second, { ...t2, cfg: { ...t2, y: t1 } });
  });

  test('replaces the nested metadata of an object overwritten by a leaf', () => {
    const first = stampMetadata({}, { cfg: { x: 1 } }, t1);
    const second = stampMetadata(first, { cfg: [1, 2] }, t2);
    assert.deepEqual(second, { ...t2, cfg: t2 });
  });
});
