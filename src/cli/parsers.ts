import { InvalidArgumentError } from 'commander';
import { checkContainerName, parseStorageAccount, StorageAccountError } from '../hub/storage/storage-account.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';

// Option parsers throw commander's InvalidArgumentError: commander then reports the option and the
// value in one line and exits 2, where any other error would escape as a stack trace. Each takes
// the option's name, for the message.

/** A whole number of at least 1 (a count, a size). */
export function parsePositiveInt(name: string) {
  return parseIntWithin(name, 1, Number.MAX_SAFE_INTEGER, `${name} must be a whole number of at least 1.`);
}

/** A whole number of at least 0 (a port, where 0 is any free one; a count, where 0 means no end). */
export function parseNonNegativeInt(name: string) {
  return parseIntWithin(name, 0, Number.MAX_SAFE_INTEGER, `${name} must be a whole number.`);
}

/** A whole number from min to max. */
export function parseIntWithin(name: string, min: number, max: number, message = `${name} must be a whole number from ${min} to ${max}.`) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(message);
    return n;
  };
}

/** A duration in seconds, fractions allowed. */
export function parseSeconds(name: string) {
  return (text: string): number => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number of seconds.`);
    return n;
  };
}

/** Text that must not be empty (an empty connection string would otherwise fall back to another source unnoticed). */
export function parseNonEmpty(name: string) {
  return (text: string): string => {
    if (text.trim() === '') throw new InvalidArgumentError(`${name} is empty.`);
    return text;
  };
}

/**
 * An Event Hubs consumer group name, as Azure names one: 1 to 50 letters, digits, periods, hyphens
 * and underscores, starting and ending with a letter or a digit; or `$Default`, the built-in one.
 */
export function parseConsumerGroup(text: string): string {
  if (text.toLowerCase() === '$default' || /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?$/.test(text)) return text;
  throw new InvalidArgumentError(
    '--consumer-group must be 1 to 50 letters, digits, periods, hyphens and underscores, starting and ending with a letter or a digit.',
  );
}

/** A storage account connection string for file upload, checked as the hub will use it (a usage error names what is wrong, never the key). */
export function checkStorageConnectionString(text: string): void {
  try {
    parseStorageAccount(text);
  } catch (err) {
    if (err instanceof StorageAccountError) throw new ToolkitError(`--file-upload: ${err.message}`, ExitCode.usage);
    throw err;
  }
}

/** A blob container name, as Azure names one. */
export function parseContainerName(text: string): string {
  try {
    return checkContainerName(text);
  } catch (err) {
    if (err instanceof StorageAccountError) throw new InvalidArgumentError(`--file-upload-container: ${err.message}.`);
    throw err;
  }
}

/** Any JSON value (a method payload may be a string, a number, an object...). */
export function parseJsonValue(name: string) {
  return (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new InvalidArgumentError(`${name} is not valid JSON: ${(err as Error).message}`);
    }
  };
}

/**
 * A JSON object such as a properties patch. Called by the action (not by commander), so that an
 * option's default text goes through it too; its error reads `--desired is not valid JSON: ...`.
 */
export function parseJsonObject(name: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ToolkitError(`${name} is not valid JSON: ${(err as Error).message}`, ExitCode.usage);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ToolkitError(`${name} must be a JSON object, like '{"telemetryInterval":122}'`, ExitCode.usage);
  return value as Record<string, unknown>;
}
