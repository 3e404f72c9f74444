// Message-routing conditions ("IoT Hub message routing query syntax"): the WHERE grammar of the twin
// query language over one message instead of a twin. `$name` reads a system property (then, if the
// message has none by that name, the application property '$name'), a bare name an application
// property, `$body.<path>` the JSON body and `$twin.<path>` the sender's twin. Compiled to closures
// once; matching a message reads only what the condition names.

import { hubErrors } from '../errors.js';
import type { PathExpr } from './ast.js';
import { compileExpression, type Dialect, type Evaluator } from './expressions.js';
import { ROUTING_BUILT_INS } from './functions.js';
import { parseRouteCondition } from './parser.js';
import { valueReader } from './paths.js';

/** What a routing condition reads of one message; every part is read only if the condition names it. */
export interface RoutedMessageView {
  /** System properties by their routing keyword without '$' (contentType, contentEncoding, connectionDeviceId, connectionModuleId, enqueuedTime (ISO 8601 string), messageId, correlationId, userId, 'dt-dataschema', 'dt-subject', ...). */
  system: Readonly<Record<string, string | undefined>>;
  /** Application properties as set by the sender (string values). */
  app: Readonly<Record<string, string>>;
  /** The body as JSON, or undefined when the message is not JSON (the caller decides from contentType/contentEncoding). */
  body(): unknown;
  /** The sender's twin document ({ tags, properties: { desired, reported } }), or undefined. */
  twin(): unknown;
}

export interface RouteCondition {
  /** True only when the condition evaluates to exactly true (undefined, null, non-booleans are false). */
  matches(message: RoutedMessageView): boolean;
}

/** IoT Hub's limit on the length of a routing query. */
export const MAX_ROUTE_CONDITION_LENGTH = 1024;

/** One matches() call: the message, and its body and twin each read at most once, on first use. */
class Reading {
  private bodyRead = false;
  private bodyValue: unknown;
  private twinRead = false;
  private twinValue: unknown;

  constructor(readonly message: RoutedMessageView) {}

  body(): unknown {
    if (!this.bodyRead) {
      this.bodyRead = true;
      this.bodyValue = this.message.body();
    }
    return this.bodyValue;
  }

  twin(): unknown {
    if (!this.twinRead) {
      this.twinRead = true;
      this.twinValue = this.message.twin();
    }
    return this.twinValue;
  }
}

/** Throws the same HubError (400 SqlQueryInvalid, with position) as a bad twin query for a condition that does not parse. */
export function compileRouteCondition(text: string): RouteCondition {
  if (text.length > MAX_ROUTE_CONDITION_LENGTH) {
    throw hubErrors.invalidQuery(`Route condition is ${text.length} characters long; the maximum is ${MAX_ROUTE_CONDITION_LENGTH}`);
  }
  const dialect: Dialect = { functions: ROUTING_BUILT_INS, path: routedPath };
  const evaluate = compileExpression(parseRouteCondition(text), dialect);
  return { matches: (message) => evaluate(new Reading(message)) === true };
}

const UNDEFINED: Evaluator = () => undefined;

/** A path of a routing condition, as a reader of a Reading. */
function routedPath(path: PathExpr): Evaluator {
  const [first, ...rest] = path.segments;
  const head = first.toLowerCase();
  if (head === '$body') {
    // The body itself (`$body`, `$body[0]`) is no value a condition can use: only paths into it are.
    if (rest.length === 0 || path.indexes?.[0].length) return UNDEFINED;
    const read = documentReader(rest, path.indexes?.slice(1));
    return (reading) => read((reading as Reading).body());
  }
  if (head === '$twin') {
    if (rest.length === 0) return UNDEFINED;
    const read = valueReader(rest);
    return (reading) => read((reading as Reading).twin());
  }
  // System and application properties are flat strings: a dotted path into one has no value.
  if (rest.length > 0) return UNDEFINED;
  if (first.startsWith('$')) {
    const keyword = first.slice(1);
    const lowerKeyword = keyword.toLowerCase();
    const lower = first.toLowerCase();
    return (reading) => {
      const { system, app } = (reading as Reading).message;
      return property(system, keyword, lowerKeyword) ?? property(app, first, lower);
    };
  }
  const lower = first.toLowerCase();
  return (reading) => property((reading as Reading).message.app, first, lower);
}

/** A flat property by name: the exact spelling first, then ignoring case (as twin paths match). */
function property(record: Readonly<Record<string, string | undefined>>, name: string, lower: string): string | undefined {
  if (Object.hasOwn(record, name)) return record[name];
  for (const key of Object.keys(record)) if (key.toLowerCase() === lower) return record[key];
  return undefined;
}

/**
 * A path into a JSON document whose names may be followed by array indexes (`indexes[i]` after
 * `segments[i]`): runs of names are read as twin paths are, indexes pick elements of arrays.
 */
function documentReader(segments: string[], indexes: number[][] | undefined): (doc: unknown) => unknown {
  if (!indexes) return valueReader(segments);
  const steps: ((value: unknown) => unknown)[] = [];
  let run: string[] = [];
  segments.forEach((segment, i) => {
    run.push(segment);
    if (indexes[i].length === 0) return;
    steps.push(valueReader(run));
    run = [];
    for (const index of indexes[i]) steps.push((value) => (Array.isArray(value) && index < value.length ? value[index] : undefined));
  });
  if (run.length > 0) steps.push(valueReader(run));
  return (doc) => {
    let value = doc;
    for (let i = 0; i < steps.length && value !== undefined; i++) value = steps[i](value);
    return value;
  };
}
