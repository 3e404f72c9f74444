import type { IncomingHttpHeaders } from 'node:http';
import type { Right } from '../auth/policies.js';
import { hubErrors } from '../errors.js';
import type { OperationId } from './operations.js';

export interface RequestContext {
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface RouteResult {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Route {
  /** IoT Hub's name for what the route does (its REST operation id). */
  operation: OperationId;
  method: string;
  /** A path like '/devices/:deviceId/modules/:moduleId'. */
  path: string;
  /** The right a request needs; a list means any one of them. */
  right: Right | readonly Right[];
  handle(ctx: RequestContext): RouteResult | Promise<RouteResult>;
}

/** What the router matches on; a Route, or any other record with a method and a path. */
interface Matchable {
  method: string;
  path: string;
}

type Compiled<R> = R & { pattern: RegExp; names: string[] };

/** Maps method + path to a route; path segments are URL-decoded into params. */
export class Router<R extends Matchable = Route> {
  private readonly routes: Array<Compiled<R>> = [];

  add(...routes: R[]): this {
    for (const route of routes) {
      const names: string[] = [];
      const source = route.path.replace(/:(\w+)/g, (_, name: string) => {
        names.push(name);
        return '([^/]+)';
      });
      this.routes.push({ ...route, pattern: new RegExp(`^${source}/?$`), names });
    }
    return this;
  }

  /** The matching route with its params, 'method' when only the method is wrong, undefined when nothing matches. */
  match(method: string, path: string): { route: R; params: Record<string, string> } | 'method' | undefined {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => (params[name] = decodeSegment(m[i + 1])));
      return { route, params };
    }
    return pathMatched ? 'method' : undefined;
  }
}

/** A URL path segment, decoded; malformed %-encoding is a 400. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw hubErrors.argumentInvalid(`The path segment '${segment.slice(0, 64)}' is not valid %-encoded UTF-8`);
  }
}
