import { createRegistry } from '../clients/service-clients.js';
import type { ServiceConnection } from '../clients/connection-string.js';
import { explain } from '../clients/sdk-errors.js';
import { DEFAULT_RETRY, withRetry } from '../clients/retry.js';

export interface QueryOptions {
  /** A query in IoT Hub's query language, e.g. SELECT * FROM devices WHERE tags.floor = 3. */
  sql: string;
  /** Results per page (the x-ms-max-item-count header); absent: the hub's default. */
  pageSize?: number;
  /** Stop after this many results; absent: all of them. */
  top?: number;
  /** Aborting stops before the next page. */
  signal?: AbortSignal;
  /** Each page's results as it arrives (cut at `top`). */
  onPage?: (results: unknown[]) => void;
}

export interface QuerySummary {
  results: number;
  pages: number;
  /** Stopped at `top` while the hub had more. */
  truncated: boolean;
}

/**
 * Runs a query (az iot hub query) page by page, with the continuation token IoT Hub returns, through
 * azure-iothub's Query. A page is retried when the hub is busy or unreachable.
 */
export async function runQuery(connection: ServiceConnection, options: QueryOptions): Promise<QuerySummary> {
  const { top, signal } = options;
  const query = createRegistry(connection).createQuery(options.sql, options.pageSize);
  const summary: QuerySummary = { results: 0, pages: 0, truncated: false };
  const what = 'running the query';
  do {
    if (signal?.aborted) break;
    let page: unknown[];
    try {
      // next() without a token asks for the first page again. A failed page leaves the query's token
      // as it was: the retry asks for the same page.
      page = (await withRetry(() => query.next(query.continuationToken), { ...DEFAULT_RETRY, what })).result as unknown[];
    } catch (err) {
      throw explain(err, what);
    }
    summary.pages++;
    const kept = top === undefined ? page : page.slice(0, top - summary.results);
    summary.results += kept.length;
    options.onPage?.(kept);
    if (top !== undefined && summary.results >= top) {
      summary.truncated = kept.length < page.length || query.hasMoreResults;
      break;
    }
  } while (query.hasMoreResults);
  return summary;
}
