// The few DER (X.690) encodings X.509 certificates need, and a reader of one element, so that issuing
// them (the hub at every start, create-device --x509) loads no ASN.1 library (node-forge cost ~0.1 CPU-s to import).

/** One DER element: its tag byte, its whole encoding and the range of its contents within that. */
export interface DerElement {
  tag: number;
  bytes: Buffer;
  contents: Buffer;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** A context-specific tag [n]: constructed (EXPLICIT, or IMPLICIT over a constructed type) or primitive. */
export const contextTag = (n: number, constructed: boolean): number => 0x80 | (constructed ? 0x20 : 0) | n;

/** Tag, definite length (short or long form), contents. */
export function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const length = body.length;
  if (length < 0x80) return Buffer.concat([Buffer.from([tag, length]), body]);
  const lengthBytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) lengthBytes.unshift(n % 256);
  return Buffer.concat([Buffer.from([tag, 0x80 | lengthBytes.length, ...lengthBytes]), body]);
}

export const sequence = (...items: Buffer[]): Buffer => tlv(TAG.SEQUENCE, ...items);
export const set = (...items: Buffer[]): Buffer => tlv(TAG.SET, ...items);
export const utf8 = (text: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(text, 'utf8'));
export const octetString = (bytes: Buffer): Buffer => tlv(TAG.OCTET_STRING, bytes);
export const integer = (bytes: Buffer): Buffer => tlv(TAG.INTEGER, bytes); // big-endian two's complement, minimal
export const TRUE = tlv(TAG.BOOLEAN, Buffer.from([0xff]));
/** A BIT STRING: the count of unused bits in its last byte, then the bytes. */
export const bitString = (bytes: Buffer, unusedBits = 0): Buffer => tlv(TAG.BIT_STRING, Buffer.from([unusedBits]), bytes);

/** An OBJECT IDENTIFIER from its dotted form: the first two arcs in one byte, then base-128 arcs. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [];
  for (const arc of [arcs[0] * 40 + arcs[1], ...arcs.slice(2)]) {
    const groups = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) groups.unshift((n & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return tlv(TAG.OID, Buffer.from(bytes));
}

/** RFC 5280 4.1.2.5: UTCTime (YYMMDDHHMMSSZ) through 2049, GeneralizedTime (YYYYMMDDHHMMSSZ) from 2050. */
export function time(ms: number): Buffer {
  const digits = new Date(ms).toISOString().replace(/\D/g, '').slice(0, 14); // YYYYMMDDHHMMSS, UTC
  return ms < Date.UTC(2050, 0, 1)
    ? tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2) + 'Z'))
    : tlv(TAG.GENERALIZED_TIME, Buffer.from(digits + 'Z'));
}

/** The element that starts at `offset` of `der` (definite lengths only, as DER has). */
export function readElement(der: Buffer, offset = 0): DerElement {
  const tag = der[offset];
  let length = der[offset + 1];
  let header = 2;
  if (length >= 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new Error('Not DER: an indefinite or oversized length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[offset + 2 + i];
    header += count;
  }
  const end = offset + header + length;
  if (tag === undefined || end > der.length) throw new Error('Not DER: an element runs past its end');
  return { tag, bytes: der.subarray(offset, end), contents: der.subarray(offset + header, end) };
}

/** The elements a constructed element (a SEQUENCE, a SET) holds, in order. */
export function children(element: DerElement): DerElement[] {
  const items: DerElement[] = [];
  for (let offset = 0; offset < element.contents.length;) {
    const item = readElement(element.contents, offset);
    items.push(item);
    offset += item.bytes.length;
  }
  return items;
}

/** PEM as node-forge wrote the hub's certificates: 64-character lines, CRLF. */
export function toPem(type: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return [`-----BEGIN ${type}-----`, ...lines, `-----END ${type}-----`, ''].join('\r\n');
}
