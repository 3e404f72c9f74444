// Page sizes and continuation tokens. A token is opaque to clients: base64url of JSON holding the
// offset of the next result and a hash of the query text, so a token cannot be replayed on
// another query. Offsets assume the source lists twins in a stable order.

import { createHash } from 'node:crypto';
import { hubErrors } from '../errors.js';
import { isObject } from './values.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export function checkPageSize(pageSize: number = DEFAULT_PAGE_SIZE): number {
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw hubErrors.argumentInvalid(`Page size must be a whole number from 1 to ${MAX_PAGE_SIZE}, not ${pageSize}`);
  }
  return pageSize;
}

function queryHash(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

export function encodeContinuation(text: string, offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset, q: queryHash(text) })).toString('base64url');
}

/** The offset a token resumes from; 0 without a token. */
export function decodeContinuation(text: string, token: string | undefined): number {
  if (!token) return 0;
  let state: unknown;
  try {
    state = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    state = undefined;
  }
  if (!isObject(state) || !Number.isSafeInteger(state.o) || (state.o as number) < 0 || typeof state.q !== 'string') {
    throw hubErrors.argumentInvalid('The continuation token is not valid');
  }
  if (state.q !== queryHash(text)) {
    throw hubErrors.argumentInvalid('The continuation token was issued for a different query');
  }
  return state.o as number;
}
