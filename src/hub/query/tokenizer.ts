// Splits query text into tokens, each remembering where it starts so that errors can point at it.

import { hubErrors, type HubError } from '../errors.js';

export type TokenType =
  | 'word' // identifier or keyword; keywords are told apart by the parser, case-insensitively
  | 'name' // [[escaped]] property name: never a keyword
  | 'number'
  | 'string'
  | 'punct'
  | 'end';

export interface Token {
  type: TokenType;
  /** The source text of the token (for 'name' and 'string', the decoded value). */
  text: string;
  /** Value of a number or string literal. */
  value?: number | string;
  /** 0-based offset into the query text. */
  offset: number;
}

/** IoT Hub's documented limit on the length of a query expression. */
export const MAX_QUERY_LENGTH = 8192;

const PUNCTUATION = ['<=', '>=', '<>', '!=', '(', ')', '[', ']', ',', '.', '*', '+', '-', '/', '%', '=', '<', '>'];
const ESCAPES: Record<string, string> = { "'": "'", '"': '"', '\\': '\\' };

/** Where an error is, for messages: positions count from 1. */
export const atPosition = (offset: number): string => `at position ${offset + 1}`;

/** A 400 naming the 1-based position and the text found there, e.g. near 'FORM': expected FROM. */
export function syntaxError(token: Token, expected: string): HubError {
  const text = token.text.length > 24 ? `${token.text.slice(0, 24)}...` : token.text;
  const near = token.type === 'end' ? 'end of query' : `'${text}'`;
  return hubErrors.invalidQuery(`Syntax error ${atPosition(token.offset)} near ${near}: ${expected}`);
}

export interface TokenizeOptions {
  /**
   * Routing conditions: a name that starts with '$' (`$dt-dataschema`, `$dt-subject`), and a name
   * further along such a path (`$body.sensor-id`, which routing queries allow), take in hyphens that
   * are followed by a name character. Elsewhere, and with spaces around it, `a-b` stays a subtraction.
   */
  hyphenatedDollarNames?: boolean;
}

export function tokenize(text: string, options: TokenizeOptions = {}): Token[] {
  if (text.length > MAX_QUERY_LENGTH) {
    throw hubErrors.invalidQuery(`Query is ${text.length} characters long; the maximum is ${MAX_QUERY_LENGTH}`);
  }
  const tokens: Token[] = [];
  let i = 0;
  function fail(offset: number, length: number, expected: string): never {
    throw syntaxError({ type: 'punct', text: text.slice(offset, offset + length), offset }, expected);
  }

  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
    } else if (/[A-Za-z_$]/.test(c)) {
      const start = i;
      while (i < text.length && /[A-Za-z0-9_$]/.test(text[i])) i++;
      const afterDot = tokens.at(-1)?.type === 'punct' && tokens.at(-1)?.text === '.';
      const hyphenated = options.hyphenatedDollarNames && (afterDot ? inDollarPath(tokens) : c === '$');
      while (hyphenated && text[i] === '-' && /[A-Za-z0-9_]/.test(text[i + 1] ?? '')) {
        i++;
        while (i < text.length && /[A-Za-z0-9_$]/.test(text[i])) i++;
      }
      tokens.push({ type: 'word', text: text.slice(start, i), offset: start });
    } else if (/[0-9]/.test(c)) {
      const match = /^(0[xX][0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?)/.exec(text.slice(i))!;
      const literal = match[0];
      if (/[A-Za-z_$]/.test(text[i + literal.length] ?? '')) fail(i, literal.length + 1, 'malformed number');
      const value = Number(literal);
      if (!Number.isFinite(value)) fail(i, literal.length, 'number out of range');
      tokens.push({ type: 'number', text: literal, value, offset: i });
      i += literal.length;
    } else if (c === "'" || c === '"') {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) fail(start, text.length - start, 'unterminated string literal');
        const d = text[i];
        if (d === c) break;
        if (d === '\\') {
          const e = text[i + 1];
          if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            value += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
            i += 6;
          } else if (e !== undefined && e in ESCAPES) {
            value += ESCAPES[e];
            i += 2;
          } else {
            fail(i, 2, 'invalid escape sequence (allowed: \\\' \\" \\\\ \\uXXXX)');
          }
        } else {
          value += d;
          i++;
        }
      }
      i++;
      tokens.push({ type: 'string', text: text.slice(start, i), value, offset: start });
    } else if (text.startsWith('[[', i)) {
      // IoT Hub's escape for property names that collide with keywords, e.g. tags.[[group]].
      const close = text.indexOf(']]', i + 2);
      if (close < 0 || close === i + 2) fail(i, 2, 'expected a property name closed by ]]');
      tokens.push({ type: 'name', text: text.slice(i + 2, close), offset: i });
      i = close + 2;
    } else {
      const punct = PUNCTUATION.find((p) => text.startsWith(p, i));
      if (!punct) fail(i, 1, 'unexpected character');
      tokens.push({ type: 'punct', text: punct, offset: i });
      i += punct.length;
    }
  }
  tokens.push({ type: 'end', text: '', offset: text.length });
  return tokens;
}

/**
 * Whether the tokens end with a '.' of a path whose first name starts with '$' (`$body.a[0].`,
 * `$twin.tags.`): its names may hold hyphens, as routing queries allow in property names.
 */
function inDollarPath(tokens: Token[]): boolean {
  for (let k = tokens.length - 2; k >= 0; k--) {
    const token = tokens[k]!;
    const before = tokens[k - 1];
    if (token.type === 'word') {
      if (before?.type === 'punct' && before.text === '.') continue;
      return token.text.startsWith('$');
    }
    if (token.type === 'number' || (token.type === 'punct' && ['.', '[', ']'].includes(token.text))) continue;
    return false;
  }
  return false;
}
