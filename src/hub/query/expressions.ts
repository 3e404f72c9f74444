// Compiles expression trees to closures once per query, so that evaluating a twin is plain
// function calls with no re-parsing or tree walking by node kind.

import { hubErrors } from '../errors.js';
import type { ArithmeticOp, Expr } from './ast.js';
import { BUILT_INS } from './functions.js';
import { valueReader } from './paths.js';
import { atPosition } from './tokenizer.js';
import { and, compareValues, isPrimitive, not, or } from './values.js';

/** Evaluates an expression against one twin document; undefined is the language's undefined. */
export type Evaluator = (doc: unknown) => unknown;
export type Predicate = (doc: unknown) => boolean;

const ARITHMETIC: Record<ArithmeticOp, (a: number, b: number) => number> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
  '/': (a, b) => a / b,
  '%': (a, b) => a % b,
};

/** A document matches only when the condition is exactly true: undefined and non-booleans do not. */
export function compileCondition(expr: Expr): Predicate {
  const evaluate = compileExpression(expr);
  return (doc) => evaluate(doc) === true;
}

export function compileExpression(expr: Expr): Evaluator {
  switch (expr.kind) {
    case 'literal': {
      const value = expr.value;
      return () => value;
    }
    case 'path':
      return valueReader(expr.segments);
    case 'not': {
      const operand = compileExpression(expr.operand);
      return (doc) => not(operand(doc));
    }
    case 'negate': {
      const operand = compileExpression(expr.operand);
      return (doc) => {
        const v = operand(doc);
        return typeof v === 'number' ? -v : undefined;
      };
    }
    case 'logical': {
      const left = compileExpression(expr.left);
      const right = compileExpression(expr.right);
      return expr.op === 'AND'
        ? (doc) => {
            const l = left(doc);
            return l === false ? false : and(l, right(doc));
          }
        : (doc) => {
            const l = left(doc);
            return l === true ? true : or(l, right(doc));
          };
    }
    case 'compare': {
      const { op } = expr;
      const left = compileExpression(expr.left);
      const right = compileExpression(expr.right);
      return (doc) => compareValues(op, left(doc), right(doc));
    }
    case 'arithmetic': {
      const apply = ARITHMETIC[expr.op];
      const left = compileExpression(expr.left);
      const right = compileExpression(expr.right);
      return (doc) => {
        const a = left(doc);
        const b = right(doc);
        if (typeof a !== 'number' || typeof b !== 'number') return undefined;
        const result = apply(a, b);
        return Number.isFinite(result) ? result : undefined; // JSON has no Infinity or NaN
      };
    }
    case 'in': {
      const { negated } = expr;
      const list = new Set(expr.list);
      const operand = compileExpression(expr.operand);
      return (doc) => {
        const v = operand(doc);
        return isPrimitive(v) ? list.has(v) !== negated : undefined;
      };
    }
    case 'call': {
      const builtIn = BUILT_INS.get(expr.name.toUpperCase());
      const where = atPosition(expr.offset);
      if (!builtIn) throw hubErrors.invalidQuery(`Unknown function '${expr.name}' ${where}`);
      if (expr.args.length !== builtIn.arity) {
        throw hubErrors.invalidQuery(
          `${expr.name} takes ${builtIn.arity} argument${builtIn.arity === 1 ? '' : 's'}, not ${expr.args.length}, ${where}`,
        );
      }
      const args = expr.args.map(compileExpression);
      const { apply } = builtIn;
      return args.length === 1 ? (doc) => apply(args[0](doc)) : (doc) => apply(...args.map((arg) => arg(doc)));
    }
  }
}
