// Bounds for untrusted JSON (REST bodies, method payloads and answers), checked without recursion so
// that no document, however deep, can exhaust the stack of the code that walks or serializes it.

/**
 * How deeply objects and arrays may nest in a request body or a method payload. IoT Hub documents
 * no such bound outside twins (whose sections nest at most 10 deep); 64 is the default maximum depth
 * of .NET's JSON readers (Json.NET 13, System.Text.Json), far beyond any real payload.
 */
export const MAX_JSON_DEPTH = 64;

const surrogate = /[\uD800-\uDFFF]/;
const loneSurrogate = /\p{Cs}/u;

/** False for text with a lone surrogate (JSON's "\ud800"), which UTF-8, and so IoT Hub, cannot carry. */
export function isWellFormedText(text: string): boolean {
  // Most text has no surrogate at all, and that test is the cheaper one.
  return !surrogate.test(text) || !loneSurrogate.test(text);
}

/**
 * Why a parsed JSON value is refused, or undefined when it is not: objects or arrays nested deeper
 * than `maxDepth`; a number JSON cannot carry (`1e400` parses as Infinity, which would be stored and
 * sent as null); a string or name that is not well-formed Unicode. The reason names where, e.g.
 * `payload.a[2]: ...`, under `root` (the value's own name).
 */
export function jsonProblem(value: unknown, root: string, maxDepth = MAX_JSON_DEPTH): string | undefined {
  // Paths cost more than the check: they are built only to name a problem already found.
  return find(value, maxDepth, undefined) && find(value, maxDepth, root);
}

/** The walk behind jsonProblem, with its own stacks; without a `root` it builds no paths. */
function find(value: unknown, maxDepth: number, root: string | undefined): string | undefined {
  const items: unknown[] = [value];
  const depths: number[] = [0];
  const paths: string[] = [root ?? ''];
  const withPaths = root !== undefined;
  while (items.length > 0) {
    const item = items.pop();
    const depth = depths.pop()!;
    const path = paths.pop()!;
    if (typeof item === 'number') {
      if (!Number.isFinite(item)) return `${shorten(path)}: the number is out of the range JSON numbers can hold`;
    } else if (typeof item === 'string') {
      if (!isWellFormedText(item)) return `${shorten(path)}: the string is not well-formed Unicode (a lone surrogate)`;
    } else if (typeof item === 'object' && item !== null) {
      if (depth === maxDepth) return `${shorten(path)}: objects and arrays may be nested at most ${maxDepth} levels deep`;
      if (Array.isArray(item)) {
        for (let i = 0; i < item.length; i++) {
          items.push(item[i]);
          depths.push(depth + 1);
          paths.push(withPaths ? `${path}[${i}]` : '');
        }
      } else {
        for (const name of Object.keys(item)) {
          if (!isWellFormedText(name)) return `${shorten(path)}: a property name is not well-formed Unicode (a lone surrogate)`;
          items.push((item as Record<string, unknown>)[name]);
          depths.push(depth + 1);
          paths.push(withPaths ? `${path}.${name}` : '');
        }
      }
    }
  }
  return undefined;
}

/** A path short enough for an error message. */
function shorten(path: string): string {
  return path.length > 100 ? `${path.slice(0, 97)}...` : path;
}
