// The SELECT list (with GROUP BY) compiled to either a per-twin projection or an aggregation over
// the whole filtered set.

import { hubErrors } from '../errors.js';
import type { AggregateName, PathExpr, QueryAst, SelectItem } from './ast.js';
import { entryReader, pathKey, valueReader, type EntryReader, type ValueReader } from './paths.js';
import { atPosition as at } from './tokenizer.js';

export type Row = Record<string, unknown>;

export type Projection =
  { kind: 'each'; project: (doc: unknown) => unknown } | { kind: 'aggregate'; aggregate: (docs: Iterable<unknown>) => Row[] };

interface Accumulator {
  add(doc: unknown): void;
  /** undefined when there is nothing to report (e.g. SUM over no numbers): the column is omitted. */
  result(): unknown;
}

type Column = { kind: 'field'; alias?: string; read: EntryReader } | { kind: 'aggregate'; name: string; start: () => Accumulator };

type FieldColumn = Extract<Column, { kind: 'field' }>;

export function compileProjection(ast: QueryAst): Projection {
  const { select, groupBy } = ast;
  if (!select) {
    if (groupBy.length > 0) throw hubErrors.invalidQuery(`SELECT * cannot be used with GROUP BY ${at(groupBy[0].offset)}`);
    return { kind: 'each', project: (doc) => doc };
  }
  const columns = compileColumns(select);
  if (groupBy.length === 0 && columns.every((c) => c.kind === 'field')) {
    const fields = columns as FieldColumn[];
    return {
      kind: 'each',
      project: (doc) => {
        const row: Row = {};
        for (const field of fields) addField(field, doc, row);
        return row;
      },
    };
  }
  checkGrouped(select, groupBy);
  return {
    kind: 'aggregate',
    aggregate: aggregator(
      columns,
      groupBy.map((p) => valueReader(p.segments)),
    ),
  };
}

function compileColumns(select: SelectItem[]): Column[] {
  const names = new Set<string>();
  let unnamed = 0;
  return select.map((item) => {
    const offset = item.kind === 'field' ? item.path.offset : item.offset;
    // IoT Hub names a field after its last property name, and numbers columns that have none ($1, $2...).
    const name = item.alias ?? (item.kind === 'field' ? item.path.segments[item.path.segments.length - 1] : `$${++unnamed}`);
    if (names.has(name.toLowerCase())) {
      throw hubErrors.invalidQuery(`Duplicate column name '${name}' ${at(offset)}: give one of them a name with AS`);
    }
    names.add(name.toLowerCase());
    return item.kind === 'field'
      ? { kind: 'field', alias: item.alias, read: entryReader(item.path.segments) }
      : { kind: 'aggregate', name, start: accumulatorFor(item.name, item.arg) };
  });
}

/** With an aggregate or GROUP BY, a plain field has one value per group only if it is grouped on. */
function checkGrouped(select: SelectItem[], groupBy: PathExpr[]): void {
  const grouped = new Set(groupBy.map((p) => pathKey(p.segments)));
  for (const item of select) {
    if (item.kind === 'field' && !grouped.has(pathKey(item.path.segments))) {
      throw hubErrors.invalidQuery(
        `'${item.path.segments.join('.')}' ${at(item.path.offset)} must appear in GROUP BY to be selected with an aggregate`,
      );
    }
  }
}

/** An unaliased field takes the document's own spelling of its last property name; a missing one is left out. */
function addField(field: FieldColumn, doc: unknown, row: Row): void {
  const entry = field.read(doc);
  if (entry && entry[1] !== undefined) row[field.alias ?? entry[0]] = entry[1];
}

function aggregator(columns: Column[], keys: ValueReader[]): (docs: Iterable<unknown>) => Row[] {
  const aggregates = columns.filter((c) => c.kind === 'aggregate');
  return (docs) => {
    const groups = new Map<string, { first: unknown; accumulators: Accumulator[] }>();
    const open = (key: string, first: unknown) => {
      const group = { first, accumulators: aggregates.map((a) => a.start()) };
      groups.set(key, group);
      return group;
    };
    for (const doc of docs) {
      const key = keys.map((read) => groupKey(read(doc))).join('\u0000');
      const group = groups.get(key) ?? open(key, doc);
      for (const accumulator of group.accumulators) accumulator.add(doc);
    }
    // Without GROUP BY an aggregate always yields one row, e.g. COUNT() over no twins is 0.
    if (keys.length === 0 && groups.size === 0) open('', undefined);
    return [...groups.values()].map(({ first, accumulators }) => {
      const row: Row = {};
      let next = 0;
      for (const column of columns) {
        if (column.kind === 'field') {
          addField(column, first, row);
        } else {
          const value = accumulators[next++].result();
          if (value !== undefined) row[column.name] = value;
        }
      }
      return row;
    });
  };
}

function groupKey(value: unknown): string {
  return value === undefined ? 'u' : `v${JSON.stringify(value)}`;
}

function accumulatorFor(name: AggregateName, arg: PathExpr | undefined): () => Accumulator {
  if (name === 'COUNT') {
    return () => {
      let count = 0;
      return { add: () => void count++, result: () => count };
    };
  }
  const read = valueReader(arg!.segments);
  // SUM, AVG, MIN and MAX take the numbers among the values and skip everything else.
  return () => {
    let count = 0;
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    return {
      add: (doc) => {
        const v = read(doc);
        if (typeof v !== 'number') return;
        count++;
        sum += v;
        min = Math.min(min, v);
        max = Math.max(max, v);
      },
      result: () => {
        if (count === 0) return undefined;
        return { SUM: sum, AVG: sum / count, MIN: min, MAX: max }[name];
      },
    };
  };
}
