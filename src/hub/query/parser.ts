// Recursive-descent parser from tokens to a QueryAst. Precedence, loosest first:
// OR, AND, NOT, comparison (= != <> < <= > >= IN NIN), + -, * / %, unary -.

import { hubErrors } from '../errors.js';
import type { AggregateName, Collection, Expr, PathExpr, Primitive, QueryAst, SelectItem } from './ast.js';
import { atPosition, syntaxError, tokenize, type Token } from './tokenizer.js';

const KEYWORDS = new Set(['SELECT', 'TOP', 'FROM', 'WHERE', 'GROUP', 'BY', 'AS', 'AND', 'OR', 'NOT', 'IN', 'NIN', 'TRUE', 'FALSE', 'NULL']);
const AGGREGATES = new Set<string>(['COUNT', 'SUM', 'AVG', 'MIN', 'MAX'] satisfies AggregateName[]);
const COMPARISONS = new Set(['=', '!=', '<>', '<', '<=', '>', '>=']);
const COLLECTIONS = new Set<string>(['devices', 'devices.modules', 'devices.jobs'] satisfies Collection[]);

/**
 * How deeply a condition may nest parentheses, NOT, unary minus and function calls. IoT Hub documents
 * no such bound (only the 8192-character length); the hub's is far beyond any real query, and keeps
 * parsing and evaluating within a fixed share of the stack. Chains (a OR b OR ...) do not nest.
 */
export const MAX_QUERY_NESTING = 64;

export function parseQuery(text: string): QueryAst {
  return new Parser(tokenize(text)).query();
}

/**
 * A message-routing condition: the WHERE grammar alone, where `$dt-dataschema`-like names keep their
 * hyphens and $body paths may index arrays (`$body.readings[0].value`).
 */
export function parseRouteCondition(text: string): Expr {
  return new Parser(tokenize(text, { hyphenatedDollarNames: true }), true).condition();
}

class Parser {
  private index = 0;
  private nesting = 0;
  /** Set once FROM is read: IoT Hub's job queries name their properties devices.jobs.<name>. */
  private from?: Collection;

  constructor(
    private readonly tokens: Token[],
    /** Parsing a routing condition rather than a twin query. */
    private readonly routing = false,
  ) {}

  query(): QueryAst {
    this.expectKeyword('SELECT');
    let top: number | undefined;
    if (this.acceptKeyword('TOP')) {
      const t = this.next();
      if (t.type !== 'number' || !Number.isSafeInteger(t.value)) throw syntaxError(t, 'expected a whole number after TOP');
      top = t.value as number;
    }
    const select = this.acceptPunct('*') ? undefined : this.selectList();
    this.expectKeyword('FROM');
    const from = this.collection();
    // IoT Hub serves devices.jobs with SELECT * only ("Queries for IoT Hub jobs").
    if (from === 'devices.jobs' && select)
      throw hubErrors.invalidQuery('Queries on devices.jobs support SELECT * only: projections and aggregates are not supported');
    this.from = from;
    const where = this.acceptKeyword('WHERE') ? this.expression() : undefined;
    const groupBy: PathExpr[] = [];
    if (this.acceptKeyword('GROUP')) {
      this.expectKeyword('BY');
      do groupBy.push(this.path());
      while (this.acceptPunct(','));
    }
    if (this.peek().type !== 'end') {
      const rest = groupBy.length > 0 ? '' : where ? 'GROUP BY or ' : 'WHERE, GROUP BY or ';
      throw syntaxError(this.peek(), `expected ${rest}end of query`);
    }
    return { top, select, from, where, groupBy };
  }

  condition(): Expr {
    const where = this.expression();
    if (this.peek().type !== 'end') throw syntaxError(this.peek(), 'expected end of condition');
    return where;
  }

  private selectList(): SelectItem[] {
    const items: SelectItem[] = [];
    do {
      const t = this.peek();
      let item: SelectItem;
      const name = t.text.toUpperCase();
      if (t.type === 'word' && AGGREGATES.has(name) && this.isPunct('(', 1)) {
        this.index += 2;
        const arg = name === 'COUNT' ? undefined : this.path();
        this.expectPunct(')');
        item = { kind: 'aggregate', name: name as AggregateName, arg, offset: t.offset };
      } else {
        item = { kind: 'field', path: this.path() };
      }
      if (this.acceptKeyword('AS')) item.alias = this.identifier('expected an alias after AS');
      items.push(item);
    } while (this.acceptPunct(','));
    return items;
  }

  private collection(): Collection {
    const start = this.peek();
    const segments = [this.identifier('expected a collection (devices, devices.modules or devices.jobs)')];
    while (this.acceptPunct('.')) segments.push(this.identifier('expected a collection name after .'));
    const name = segments.join('.').toLowerCase();
    if (!COLLECTIONS.has(name)) {
      throw hubErrors.invalidQuery(
        `Unknown collection '${segments.join('.')}' ${atPosition(start.offset)}: expected devices, devices.modules or devices.jobs`,
      );
    }
    return name as Collection;
  }

  private path(): PathExpr {
    const offset = this.peek().offset;
    const segments = [this.identifier('expected a property name')];
    if (this.routing) return this.routedPath(segments, offset);
    while (this.acceptPunct('.')) segments.push(this.identifier('expected a property name after .'));
    const collection =
      this.from === 'devices.jobs' && segments.length > 2 && segments.slice(0, 2).join('.').toLowerCase() === 'devices.jobs';
    return { kind: 'path', segments: collection ? segments.slice(2) : segments, offset };
  }

  /** The rest of a routing condition's path: $body paths may index arrays after any name. */
  private routedPath(segments: string[], offset: number): PathExpr {
    const body = segments[0].toLowerCase() === '$body';
    const indexes: number[][] = [];
    let indexed = false;
    for (;;) {
      const after: number[] = [];
      while (this.isPunct('[')) {
        if (!body) throw syntaxError(this.peek(), 'array indexes are allowed in $body paths only');
        this.next();
        const t = this.next();
        if (t.type !== 'number' || !Number.isSafeInteger(t.value)) throw syntaxError(t, 'expected an array index (a whole number)');
        after.push(t.value as number);
        this.expectPunct(']');
        indexed = true;
      }
      indexes.push(after);
      if (!this.acceptPunct('.')) break;
      segments.push(this.identifier('expected a property name after .'));
    }
    return indexed ? { kind: 'path', segments, indexes, offset } : { kind: 'path', segments, offset };
  }

  private identifier(expected: string): string {
    const t = this.next();
    if (t.type === 'name') return t.text;
    if (t.type === 'word') {
      if (!KEYWORDS.has(t.text.toUpperCase())) return t.text;
      throw syntaxError(t, `${expected} ('${t.text}' is a keyword; escape it as [[${t.text}]])`);
    }
    throw syntaxError(t, expected);
  }

  private expression(): Expr {
    let left = this.and();
    while (this.isKeyword('OR')) {
      const offset = this.next().offset;
      left = { kind: 'logical', op: 'OR', left, right: this.and(), offset };
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.isKeyword('AND')) {
      const offset = this.next().offset;
      left = { kind: 'logical', op: 'AND', left, right: this.not(), offset };
    }
    return left;
  }

  private not(): Expr {
    if (!this.isKeyword('NOT')) return this.comparison();
    const offset = this.next().offset;
    return { kind: 'not', operand: this.nested(offset, () => this.not()), offset };
  }

  private comparison(): Expr {
    const left = this.additive();
    const t = this.peek();
    if (t.type === 'punct' && COMPARISONS.has(t.text)) {
      this.next();
      const op = t.text === '<>' ? '!=' : (t.text as '=' | '!=' | '<' | '<=' | '>' | '>=');
      return { kind: 'compare', op, left, right: this.additive(), offset: t.offset };
    }
    if (this.isKeyword('IN') || this.isKeyword('NIN')) {
      this.next();
      return { kind: 'in', negated: t.text.toUpperCase() === 'NIN', operand: left, list: this.array(), offset: t.offset };
    }
    return left;
  }

  private additive(): Expr {
    let left = this.multiplicative();
    for (let t = this.peek(); t.type === 'punct' && (t.text === '+' || t.text === '-'); t = this.peek()) {
      this.next();
      left = { kind: 'arithmetic', op: t.text as '+' | '-', left, right: this.multiplicative(), offset: t.offset };
    }
    return left;
  }

  private multiplicative(): Expr {
    let left = this.unary();
    for (let t = this.peek(); t.type === 'punct' && ['*', '/', '%'].includes(t.text); t = this.peek()) {
      this.next();
      left = { kind: 'arithmetic', op: t.text as '*' | '/' | '%', left, right: this.unary(), offset: t.offset };
    }
    return left;
  }

  private unary(): Expr {
    if (!this.isPunct('-')) return this.primary();
    const offset = this.next().offset;
    return { kind: 'negate', operand: this.nested(offset, () => this.unary()), offset };
  }

  private primary(): Expr {
    const t = this.peek();
    const constant = this.constant();
    if (constant !== undefined) return { kind: 'literal', value: constant.value, offset: t.offset };
    if (this.acceptPunct('(')) {
      const inner = this.nested(t.offset, () => this.expression());
      this.expectPunct(')');
      return inner;
    }
    if (t.type === 'word' && this.isPunct('(', 1)) {
      if (!this.routing && AGGREGATES.has(t.text.toUpperCase())) throw syntaxError(t, `aggregate ${t.text}() is only allowed in SELECT`);
      this.index += 2;
      const args: Expr[] = [];
      if (!this.acceptPunct(')')) {
        do args.push(this.nested(t.offset, () => this.expression()));
        while (this.acceptPunct(','));
        this.expectPunct(')');
      }
      return { kind: 'call', name: t.text, args, offset: t.offset };
    }
    if (t.type === 'word' || t.type === 'name') return this.path();
    throw syntaxError(t, 'expected a value, a property or a function');
  }

  /** A literal constant, consumed if present; wrapped so that null is distinguishable from "none". */
  private constant(): { value: Primitive } | undefined {
    const t = this.peek();
    if (t.type === 'number' || t.type === 'string') {
      this.next();
      return { value: t.value! };
    }
    if (t.type === 'word') {
      const word = t.text.toUpperCase();
      if (word === 'TRUE' || word === 'FALSE' || word === 'NULL') {
        this.next();
        return { value: word === 'NULL' ? null : word === 'TRUE' };
      }
    }
    return undefined;
  }

  private array(): Primitive[] {
    this.expectPunct('[');
    const list: Primitive[] = [];
    do {
      const negative = this.acceptPunct('-');
      const t = this.peek();
      const constant = this.constant();
      if (constant === undefined || (negative && t.type !== 'number')) throw syntaxError(t, 'expected a constant');
      list.push(negative ? -(constant.value as number) : constant.value);
    } while (this.acceptPunct(','));
    this.expectPunct(']');
    return list;
  }

  /** Parses one nesting level deeper (at `offset`), refusing to go past MAX_QUERY_NESTING. */
  private nested(offset: number, parse: () => Expr): Expr {
    if (this.nesting === MAX_QUERY_NESTING) {
      throw hubErrors.invalidQuery(`The condition is nested more than ${MAX_QUERY_NESTING} levels deep ${atPosition(offset)}`);
    }
    this.nesting++;
    try {
      return parse();
    } finally {
      this.nesting--;
    }
  }

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.index + ahead, this.tokens.length - 1)];
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== 'end') this.index++;
    return t;
  }

  private isKeyword(keyword: string): boolean {
    const t = this.peek();
    return t.type === 'word' && t.text.toUpperCase() === keyword;
  }

  private acceptKeyword(keyword: string): boolean {
    if (!this.isKeyword(keyword)) return false;
    this.next();
    return true;
  }

  private expectKeyword(keyword: string): void {
    if (!this.acceptKeyword(keyword)) throw syntaxError(this.peek(), `expected ${keyword}`);
  }

  private isPunct(punct: string, ahead = 0): boolean {
    const t = this.peek(ahead);
    return t.type === 'punct' && t.text === punct;
  }

  private acceptPunct(punct: string): boolean {
    if (!this.isPunct(punct)) return false;
    this.next();
    return true;
  }

  private expectPunct(punct: string): void {
    if (!this.acceptPunct(punct)) throw syntaxError(this.peek(), `expected ${punct}`);
  }
}
