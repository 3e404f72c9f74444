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
      // A chain (a AND b OR c ...) is folded in a loop, leftmost first: its length costs no stack.
      const { first, links } = leftSpine(expr);
      const start = compileExpression(first);
      const isAnd = links.map((link) => link.op === 'AND');
      const rights = links.map((link) => compileExpression(link.right));
      return (doc) => {
        let value = start(doc);
        for (let i = 0; i < rights.length; i++) {
          if (isAnd[i]) value = value === false ? false : and(value, rights[i](doc));
          else value = value === true ? true : or(value, rights[i](doc));
        }
        return value;
      };
    }
    case 'compare': {
      const { op } = expr;
      const left = compileExpression(expr.left);
      const right = compileExpression(expr.right);
      return (doc) => compareValues(op, left(doc), right(doc));
    }
    case 'arithmetic': {
      const { first, links } = leftSpine(expr);
      const start = compileExpression(first);
      const applies = links.map((link) => ARITHMETIC[link.op as ArithmeticOp]);
      const rights = links.map((link) => compileExpression(link.right));
      return (doc) => {
        let value = start(doc);
        for (let i = 0; i < rights.length; i++) {
          const b = rights[i](doc);
          if (typeof value !== 'number' || typeof b !== 'number') return undefined;
          value = applies[i](value, b);
          if (!Number.isFinite(value)) return undefined; // JSON has no Infinity or NaN
        }
        return value;
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

/** A binary node that chains: a logical or an arithmetic operator. */
type Link = Extract<Expr, { kind: 'logical' | 'arithmetic' }>;

/**
 * The parser builds chains left-deep ((a + b) - c), so a long one is a deep tree. This walks down
 * its left side, through the nodes of the same kind, without recursion, and returns the leftmost
 * operand and the links above it, innermost first: the value of each link is its operator applied
 * to the value so far and its right operand.
 */
function leftSpine(expr: Link): { first: Expr; links: Link[] } {
  const links: Link[] = [];
  let node: Expr = expr;
  while (node.kind === expr.kind) {
    links.push(node as Link);
    node = (node as Link).left;
  }
  return { first: node, links: links.reverse() };
}
