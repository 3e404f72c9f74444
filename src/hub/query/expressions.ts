// Compiles expression trees to closures once per query, so that evaluating a twin is plain
// function calls with no re-parsing or tree walking by node kind.

import { hubErrors } from '../errors.js';
import type { ArithmeticOp, Expr, PathExpr } from './ast.js';
import { BUILT_INS, type BuiltIn } from './functions.js';
import { valueReader } from './paths.js';
import { atPosition } from './tokenizer.js';
import { and, compareValues, isPrimitive, not, or } from './values.js';

/** Evaluates an expression against one twin document; undefined is the language's undefined. */
export type Evaluator = (doc: unknown) => unknown;
export type Predicate = (doc: unknown) => boolean;

/** What a property path reads and which functions exist: twin queries and routing conditions differ. */
export interface Dialect {
  /** Keyed by upper-case name. */
  functions: ReadonlyMap<string, BuiltIn>;
  path(expr: PathExpr): Evaluator;
}

/** Twin queries: a path reads the twin document (`doc`). */
export const TWIN_QUERY: Dialect = { functions: BUILT_INS, path: (expr) => valueReader(expr.segments) };

const ARITHMETIC: Record<ArithmeticOp, (a: number, b: number) => number> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
  '/': (a, b) => a / b,
  '%': (a, b) => a % b,
};

/** A document matches only when the condition is exactly true: undefined and non-booleans do not. */
export function compileCondition(expr: Expr, dialect: Dialect = TWIN_QUERY): Predicate {
  const evaluate = compileExpression(expr, dialect);
  return (doc) => evaluate(doc) === true;
}

export function compileExpression(expr: Expr, dialect: Dialect = TWIN_QUERY): Evaluator {
  const compile = (e: Expr) => compileExpression(e, dialect);
  switch (expr.kind) {
    case 'literal': {
      const value = expr.value;
      return () => value;
    }
    case 'path':
      return dialect.path(expr);
    case 'not': {
      const operand = compile(expr.operand);
      return (doc) => not(operand(doc));
    }
    case 'negate': {
      const operand = compile(expr.operand);
      return (doc) => {
        const v = operand(doc);
        return typeof v === 'number' ? -v : undefined;
      };
    }
    case 'logical': {
      // A chain (a AND b OR c ...) is folded in a loop, leftmost first: its length costs no stack.
      const { first, links } = leftSpine(expr);
      const start = compile(first);
      const isAnd = links.map((link) => link.op === 'AND');
      const rights = links.map((link) => compile(link.right));
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
      const left = compile(expr.left);
      const right = compile(expr.right);
      return (doc) => compareValues(op, left(doc), right(doc));
    }
    case 'arithmetic': {
      const { first, links } = leftSpine(expr);
      const start = compile(first);
      const applies = links.map((link) => ARITHMETIC[link.op as ArithmeticOp]);
      const rights = links.map((link) => compile(link.right));
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
      const operand = compile(expr.operand);
      return (doc) => {
        const v = operand(doc);
        return isPrimitive(v) ? list.has(v) !== negated : undefined;
      };
    }
    case 'call': {
      const builtIn = dialect.functions.get(expr.name.toUpperCase());
      const where = atPosition(expr.offset);
      if (!builtIn) throw hubErrors.invalidQuery(`Unknown function '${expr.name}' ${where}`);
      const { arity, maxArity = arity } = builtIn;
      if (expr.args.length < arity || expr.args.length > maxArity) {
        const count = maxArity === arity ? `${arity}` : maxArity === Infinity ? `${arity} or more` : `${arity} to ${maxArity}`;
        throw hubErrors.invalidQuery(`${expr.name} takes ${count} argument${maxArity === 1 ? '' : 's'}, not ${expr.args.length}, ${where}`);
      }
      const args = expr.args.map(compile);
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
