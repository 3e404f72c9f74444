import type { EventPosition } from './event-log.js';

// An Event Hubs receiver says where to start with a selector filter on its link source, e.g.
// `amqp.annotation.x-opt-offset > '-1'`. The SDK writes offset, sequence-number and enqueued-time
// forms, with > or >=; offset '-1' is the start of the partition and '@latest' its end.

export const selectorFilterName = 'apache.org:selector-filter:string';

const expression = /^\s*amqp\.annotation\.(x-opt-offset|x-opt-sequence-number|x-opt-enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$/i;

const kinds = {
  'x-opt-offset': 'offset',
  'x-opt-sequence-number': 'sequenceNumber',
  'x-opt-enqueued-time': 'enqueuedTime',
} as const;

/**
 * The start position of a link source's filter map (a receiver without a filter starts at the
 * beginning). Throws a RangeError, with the text for the client, when the filter is not understood.
 */
export function positionFromFilter(filter: Record<string, unknown> | undefined): EventPosition {
  const entry = filter?.[selectorFilterName];
  if (entry === undefined) return { kind: 'earliest' };
  // rhea hands a described filter over as a Typed value with the string inside.
  const text = typeof entry === 'object' && entry !== null && 'value' in entry ? entry.value : entry;
  if (typeof text !== 'string') throw new RangeError(`The ${selectorFilterName} filter must be a string.`);
  return parseSelector(text);
}

export function parseSelector(text: string): EventPosition {
  const match = expression.exec(text);
  if (!match) throw new RangeError(`The filter '${text}' is not a supported event position.`);
  const kind = kinds[match[1]!.toLowerCase() as keyof typeof kinds];
  const inclusive = match[2] === '>=';
  const value = match[3]!;
  if (kind === 'offset' && value === '-1') return { kind: 'earliest' };
  if (kind === 'offset' && value.toLowerCase() === '@latest') return { kind: 'latest' };
  if (!/^-?\d+$/.test(value)) throw new RangeError(`The ${kind} in the filter '${text}' is not a number.`);
  return { kind, value: Number(value), inclusive };
}
