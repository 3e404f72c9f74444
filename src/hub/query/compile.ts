// Query text to an executable plan: parsed once, every clause compiled to closures.

import type { Collection } from './ast.js';
import { compileCondition, type Predicate } from './expressions.js';
import { parseQuery } from './parser.js';
import { compileProjection, type Projection } from './projection.js';

export interface CompiledQuery {
  from: Collection;
  top?: number;
  filter: Predicate;
  projection: Projection;
}

export function compileQuery(text: string): CompiledQuery {
  const ast = parseQuery(text);
  return {
    from: ast.from,
    top: ast.top,
    filter: ast.where ? compileCondition(ast.where) : () => true,
    projection: compileProjection(ast),
  };
}
