// The value rules of IoT Hub's query language (from the DocumentDB SQL it descends from): no type
// coercion, and `undefined` (a missing property, or an operation on the wrong types) propagates
// until a condition treats it as false.

import type { ComparisonOp, Primitive } from './ast.js';

export function isPrimitive(value: unknown): value is Primitive {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * true or false when both sides are primitives of the same type; undefined otherwise, so that
 * `tags.floor != 3` matches neither a twin whose floor is the string '3' nor one with no floor.
 * Only numbers and strings are ordered; strings (and so ISO dates) compare by code unit.
 */
export function compareValues(op: ComparisonOp, a: unknown, b: unknown): boolean | undefined {
  if (!isPrimitive(a) || !isPrimitive(b)) return undefined;
  if (typeof a !== typeof b) return undefined; // null is the only primitive whose typeof is 'object'
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
  }
  if (typeof a !== 'number' && typeof a !== 'string') return undefined;
  const x = a as number | string;
  const y = b as number | string;
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
  }
}

/** Three-valued AND: false wins, then anything that is not true makes the result undefined. */
export function and(a: unknown, b: unknown): boolean | undefined {
  if (a === false || b === false) return false;
  return a === true && b === true ? true : undefined;
}

/** Three-valued OR: true wins, then anything that is not false makes the result undefined. */
export function or(a: unknown, b: unknown): boolean | undefined {
  if (a === true || b === true) return true;
  return a === false && b === false ? false : undefined;
}

export function not(a: unknown): boolean | undefined {
  return typeof a === 'boolean' ? !a : undefined;
}
