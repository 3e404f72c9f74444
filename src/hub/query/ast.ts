// The parsed shape of an IoT Hub twin query. Every node keeps the offset of its first token so that
// errors found after parsing (unknown function, bad GROUP BY) can still point into the query text.

export type Primitive = string | number | boolean | null;

export type Collection = 'devices' | 'devices.modules' | 'devices.jobs';

export interface PathExpr {
  kind: 'path';
  /** Property names from the document root, as written (matching is case-insensitive). */
  segments: string[];
  /**
   * Routing conditions only, and only in $body paths: the array indexes written after each segment
   * (`$body.a[0].b` has [[], [0], []]). Absent when the path has none.
   */
  indexes?: number[][];
  offset: number;
}

export type ComparisonOp = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type ArithmeticOp = '+' | '-' | '*' | '/' | '%';

export type Expr =
  | { kind: 'literal'; value: Primitive; offset: number }
  | PathExpr
  | { kind: 'not'; operand: Expr; offset: number }
  | { kind: 'negate'; operand: Expr; offset: number }
  | { kind: 'logical'; op: 'AND' | 'OR'; left: Expr; right: Expr; offset: number }
  | { kind: 'compare'; op: ComparisonOp; left: Expr; right: Expr; offset: number }
  | { kind: 'arithmetic'; op: ArithmeticOp; left: Expr; right: Expr; offset: number }
  | { kind: 'in'; negated: boolean; operand: Expr; list: Primitive[]; offset: number }
  | { kind: 'call'; /** as written */ name: string; args: Expr[]; offset: number };

export type AggregateName = 'COUNT' | 'SUM' | 'AVG' | 'MIN' | 'MAX';

export type SelectItem =
  | { kind: 'field'; path: PathExpr; alias?: string }
  | { kind: 'aggregate'; name: AggregateName; arg?: PathExpr; alias?: string; offset: number };

export interface QueryAst {
  top?: number;
  /** Undefined for SELECT *. */
  select?: SelectItem[];
  from: Collection;
  where?: Expr;
  groupBy: PathExpr[];
}
