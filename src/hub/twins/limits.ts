import { hubErrors } from '../errors.js';
import { isWellFormedText } from '../json-bounds.js';
import { isJsonObject, type JsonObject, type JsonValue } from './json.js';

// IoT Hub's limits for tags and properties ("Understand and use device twins", "Tags and properties
// format" and "Device twin size"; "IoT Hub quotas and throttling", "Other limits").
export const twinLimits = {
  maxKeyBytes: 1024,
  maxStringBytes: 4096,
  /** How deep objects (and, here, arrays) may nest: a section's own keys are level 1. */
  maxDepth: 10,
  minInteger: -4503599627370496,
  maxInteger: 4503599627370495,
  tagsBytes: 8 * 1024,
  desiredBytes: 32 * 1024,
  reportedBytes: 32 * 1024,
} as const;

const controlChars = /\p{Cc}/gu;

/**
 * Checks a section (or a patch for it) before it is merged: keys (no `.`, `$`, space or control
 * characters, at most 1 KB), values (JSON only, strings at most 4 KB, integers within IoT Hub's
 * range, no number JSON cannot carry: `1e400` parses as Infinity), depth, and well-formed Unicode
 * (UTF-8 cannot carry a lone surrogate such as JSON's "\ud800"). IoT Hub's depth example in the
 * docs is valid with an object at level 10 holding a leaf, so objects and arrays may sit at level 10
 * at most and leaves at level 11.
 * `name` is the section's path in the twin document (`tags`, `properties.desired`), for messages.
 */
export function validateSection(name: string, section: JsonObject): void {
  validateObject(name, section, 1);
}

function validateObject(path: string, obj: JsonObject, level: number): void {
  for (const [key, value] of Object.entries(obj)) {
    validateKey(path, key);
    validateValue(`${path}.${key}`, value, level);
  }
}

function validateKey(path: string, key: string): void {
  const problem =
    key === ''
      ? 'is empty'
      : key.includes('.')
        ? "contains '.'"
        : key.includes('$')
          ? "contains '$'"
          : key.includes(' ')
            ? 'contains a space'
            : /\p{Cc}/u.test(key)
              ? 'contains a control character'
              : Buffer.byteLength(key) > twinLimits.maxKeyBytes
                ? `is longer than ${twinLimits.maxKeyBytes} bytes`
                : !isWellFormedText(key)
                  ? 'is not well-formed Unicode (a lone surrogate)'
                  : undefined;
  if (problem) {
    const shown = key.length > 64 ? `${key.slice(0, 64)}...` : key;
    throw hubErrors.argumentInvalid(`Invalid property name '${shown}' in ${path}: it ${problem}.`);
  }
}

function validateValue(path: string, value: unknown, level: number): void {
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'string') {
    if (Buffer.byteLength(value) > twinLimits.maxStringBytes) {
      throw hubErrors.argumentInvalid(`${path}: string values may be at most ${twinLimits.maxStringBytes} bytes.`);
    }
    if (!isWellFormedText(value)) throw hubErrors.argumentInvalid(`${path}: the string is not well-formed Unicode (a lone surrogate).`);
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw hubErrors.argumentInvalid(`${path}: the number is out of the range JSON numbers can hold.`);
    // Parsed JSON cannot tell 1e300 from an integer literal, so integral doubles count as integers.
    if (Number.isInteger(value) && (value < twinLimits.minInteger || value > twinLimits.maxInteger)) {
      throw hubErrors.argumentInvalid(`${path}: integers must be between ${twinLimits.minInteger} and ${twinLimits.maxInteger}.`);
    }
    return;
  }
  if (Array.isArray(value) || isJsonObject(value)) {
    if (level > twinLimits.maxDepth) {
      throw hubErrors.argumentInvalid(`${path}: objects may be nested at most ${twinLimits.maxDepth} levels deep.`);
    }
    if (Array.isArray(value)) {
      value.forEach((item, i) => validateValue(`${path}[${i}]`, item, level + 1));
    } else {
      validateObject(path, value, level + 1);
    }
    return;
  }
  throw hubErrors.argumentInvalid(`${path}: not a JSON value.`);
}

/**
 * A section's size as IoT Hub counts it ("Device twin size"): for each property the UTF-8 length of
 * its key plus its value's size; strings count their UTF-8 bytes without control characters,
 * numbers 8 bytes, booleans 4, objects the sum of their properties. $version and $metadata are kept
 * outside the section, so they never count. The docs say nothing about array items: here each
 * counts as a value without a key, and a null item as 4 bytes (like `true`).
 */
export function sectionSize(value: JsonValue): number {
  if (value === null || typeof value === 'boolean') return 4;
  if (typeof value === 'number') return 8;
  if (typeof value === 'string') return Buffer.byteLength(value.replace(controlChars, ''));
  if (Array.isArray(value)) return value.reduce<number>((sum, item) => sum + sectionSize(item), 0);
  let size = 0;
  for (const [key, item] of Object.entries(value)) size += Buffer.byteLength(key) + sectionSize(item);
  return size;
}

/** Rejects a section that a write would make larger than IoT Hub allows. */
export function checkSectionSize(name: string, section: JsonObject, limit: number): void {
  const size = sectionSize(section);
  if (size > limit) {
    throw hubErrors.twinTooLarge(`${name} would be ${size} bytes; IoT Hub allows at most ${limit} bytes (${limit / 1024} KB).`);
  }
}
