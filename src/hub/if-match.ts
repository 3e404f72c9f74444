import { hubErrors } from './errors.js';

// One etag, quoted or bare, optionally weak (W/); etag characters as RFC 7232 has them (visible
// ASCII but '"'), without ',' so that a list of etags is not mistaken for one.
const ONE_ETAG = /^(?:W\/)?(?:"([\x21\x23-\x2b\x2d-\x7e]+)"|([\x21\x23-\x2b\x2d-\x7e]+))$/;

/** IoT Hub's etags are 12 to 20 characters; anything far longer cannot name one. */
const MAX_ETAG_LENGTH = 128;

/**
 * An If-Match header as the registry and the twins compare it: undefined when absent (or empty),
 * '*' to match any, otherwise the etag without its quotes. The SDKs send `"<etag>"` or `"*"`. A
 * value that cannot be one etag (a list, unbalanced quotes, spaces or control characters) is a 400.
 */
export function parseIfMatch(header: string | undefined): string | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  const m = value.length <= MAX_ETAG_LENGTH + 4 ? ONE_ETAG.exec(value) : null;
  const etag = m?.[1] ?? m?.[2];
  if (!etag || etag.length > MAX_ETAG_LENGTH) {
    throw hubErrors.argumentInvalid(`If-Match must be * or one etag, like "AAAAAAAAAAE=" (at most ${MAX_ETAG_LENGTH} characters)`);
  }
  return etag;
}
