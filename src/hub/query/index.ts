// The IoT Hub query language over device and module twins: SELECT ... FROM devices | devices.modules
// [WHERE ...] [GROUP BY ...], and over jobs' device rows (SELECT * FROM devices.jobs [WHERE ...]),
// paged with continuation tokens. Pure: the caller supplies the documents.

import { compileQuery } from './compile.js';
import { checkPageSize, decodeContinuation, encodeContinuation } from './paging.js';

/** A twin as GET /twins/{id} returns it (module twins add moduleId). */
export type TwinDocument = Record<string, unknown>;

export interface QuerySource {
  /** Every device twin, in an order that is the same on every call: pages resume by position. */
  devices(): Iterable<TwinDocument>;
  /** Every module twin, in a stable order likewise. */
  modules(): Iterable<TwinDocument>;
  /** Every device's part of every scheduled job (IoT Hub's device job fields), in a stable order likewise. */
  jobs(): Iterable<TwinDocument>;
}

export interface QueryPage {
  /** Twins for SELECT *, otherwise projected rows. Twins are the source's objects, not copies. */
  items: unknown[];
  /** Present when more results follow; pass it back with the same query text. */
  continuationToken?: string;
}

export interface QueryOptions {
  /** 1 to 1000; 100 when absent. */
  pageSize?: number;
  continuationToken?: string;
}

export function executeQuery(text: string, source: QuerySource, options: QueryOptions = {}): QueryPage {
  const query = compileQuery(text);
  const pageSize = checkPageSize(options.pageSize);
  const offset = decodeContinuation(text, options.continuationToken);
  const { filter, projection } = query;
  const limit = query.top ?? Infinity;
  const end = Math.max(offset, Math.min(offset + pageSize, limit));
  const twins = query.from === 'devices' ? source.devices() : query.from === 'devices.modules' ? source.modules() : source.jobs();

  let items: unknown[];
  let more: boolean;
  if (projection.kind === 'aggregate') {
    // Aggregates need every matching twin; the rows are then paged like any result.
    const rows = projection.aggregate(matching(twins, filter));
    items = rows.slice(offset, end);
    more = end < Math.min(rows.length, limit);
  } else {
    // Stop at the first match past this page: it proves that another page exists.
    items = [];
    more = false;
    let index = 0;
    for (const twin of matching(twins, filter)) {
      if (index >= end) {
        more = index < limit;
        break;
      }
      if (index >= offset) items.push(projection.project(twin));
      index++;
    }
  }
  return more ? { items, continuationToken: encodeContinuation(text, end) } : { items };
}

function* matching(twins: Iterable<TwinDocument>, filter: (doc: unknown) => boolean): Iterable<TwinDocument> {
  for (const twin of twins) if (filter(twin)) yield twin;
}

/** How many rows a query returns over all its pages: what a configuration's metric reports. */
export function countRows(text: string, source: QuerySource): number {
  const { from, filter, projection, top } = compileQuery(text);
  const twins = matching(from === 'devices' ? source.devices() : source.modules(), filter);
  let rows = 0;
  if (projection.kind === 'aggregate') rows = projection.aggregate(twins).length;
  else for (const _ of twins) rows++;
  return Math.min(rows, top ?? Infinity);
}
