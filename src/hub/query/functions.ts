// The built-in functions a WHERE clause may call. String functions return undefined (so the
// condition is false) unless both arguments are strings.

import { isObject, isPrimitive } from './values.js';

export interface BuiltIn {
  arity: number;
  apply: (...args: unknown[]) => unknown;
}

const typeCheck = (test: (v: unknown) => boolean): BuiltIn => ({ arity: 1, apply: (v) => test(v) });

const stringTest = (test: (s: string, t: string) => boolean): BuiltIn => ({
  arity: 2,
  apply: (s, t) => (typeof s === 'string' && typeof t === 'string' ? test(s, t) : undefined),
});

const startsWith = stringTest((s, t) => s.startsWith(t));
const endsWith = stringTest((s, t) => s.endsWith(t));

/** Keyed by upper-case name. Both spellings of STARTSWITH/ENDSWITH appear in Microsoft's docs. */
export const BUILT_INS: ReadonlyMap<string, BuiltIn> = new Map([
  ['IS_DEFINED', typeCheck((v) => v !== undefined)],
  ['IS_NULL', typeCheck((v) => v === null)],
  ['IS_BOOL', typeCheck((v) => typeof v === 'boolean')],
  ['IS_NUMBER', typeCheck((v) => typeof v === 'number')],
  ['IS_STRING', typeCheck((v) => typeof v === 'string')],
  ['IS_OBJECT', typeCheck(isObject)],
  ['IS_ARRAY', typeCheck(Array.isArray)],
  ['IS_PRIMITIVE', typeCheck(isPrimitive)],
  ['STARTSWITH', startsWith],
  ['STARTS_WITH', startsWith],
  ['ENDSWITH', endsWith],
  ['ENDS_WITH', endsWith],
  ['CONTAINS', stringTest((s, t) => s.includes(t))],
]);
