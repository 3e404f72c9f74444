// The built-in functions a condition may call. Functions return undefined (so the condition is
// false) unless their arguments have the types they take: strings for string functions, numbers
// for math functions.

import { isObject, isPrimitive } from './values.js';

export interface BuiltIn {
  /** How many arguments it takes: exactly `arity`, or `arity` to `maxArity` when that is given. */
  arity: number;
  maxArity?: number;
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

/** A JSON number, the whole string but for surrounding whitespace (as JSON allows). */
const JSON_NUMBER = /^\s*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\s*$/;

/** A finite number, -0 as 0; anything else (NaN, Infinity: not JSON) undefined. */
const finite = (n: number): number | undefined => (Number.isFinite(n) ? n + 0 : undefined);

const math = (f: (x: number) => number): BuiltIn => ({
  arity: 1,
  apply: (x) => (typeof x === 'number' ? finite(f(x)) : undefined),
});

const stringFunction = (f: (s: string) => unknown): BuiltIn => ({
  arity: 1,
  apply: (s) => (typeof s === 'string' ? f(s) : undefined),
});

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/**
 * Every function of a routing condition: the twin query's, and those IoT Hub's query language
 * documents for message routing only ("Expressions and conditions"). String positions and lengths
 * count UTF-16 code units, as string ordering does.
 */
export const ROUTING_BUILT_INS: ReadonlyMap<string, BuiltIn> = new Map([
  ...BUILT_INS,
  ['ABS', math(Math.abs)],
  ['EXP', math(Math.exp)],
  ['POWER', { arity: 2, apply: (x, y) => (typeof x === 'number' && typeof y === 'number' ? finite(x ** y) : undefined) }],
  ['SQUARE', math((x) => x * x)],
  ['CEILING', math(Math.ceil)],
  ['FLOOR', math(Math.floor)],
  ['SIGN', math(Math.sign)],
  ['SQRT', math(Math.sqrt)], // NaN for a negative number: undefined
  // "noop if input is a number; Undefined if string doesn't represent a number".
  [
    'AS_NUMBER',
    { arity: 1, apply: (v) => (typeof v === 'number' ? v : typeof v === 'string' && JSON_NUMBER.test(v) ? finite(Number(v)) : undefined) },
  ],
  ['LOWER', stringFunction((s) => s.toLowerCase())],
  ['UPPER', stringFunction((s) => s.toUpperCase())],
  ['LENGTH', stringFunction((s) => s.length)],
  ['CONCAT', { arity: 2, maxArity: Infinity, apply: (...args) => (args.every((a) => typeof a === 'string') ? args.join('') : undefined) }],
  [
    'SUBSTRING',
    {
      arity: 2,
      maxArity: 3,
      apply: (...args) => {
        const [s, start, length] = args;
        if (typeof s !== 'string' || !isCount(start)) return undefined;
        if (args.length === 2) return s.slice(start);
        return isCount(length) ? s.slice(start, start + length) : undefined;
      },
    },
  ],
  ['INDEX_OF', { arity: 2, apply: (s, t) => (typeof s === 'string' && typeof t === 'string' ? s.indexOf(t) : undefined) }],
]);
