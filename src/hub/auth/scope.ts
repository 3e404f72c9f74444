// IoT Hub's scope rule for SAS tokens ("Control access to IoT Hub with shared access signatures",
// SAS token structure): a token's resource URI (`sr`) is a URI prefix, by whole path segments, of the
// resources it may be used on: `hub/a/b` reaches `hub/a/b/c` but not `hub/a/bc`. Tokens carry the URI
// URL-encoded and, by the documented convention, lower-cased; so both sides are compared decoded and
// without regard to case (host and ids alike, as IoT Edge's hub does).

/** How far a token's scope reaches a resource: the resource itself, something above it, or not at all. */
export type Reach = 'exact' | 'above' | undefined;

/**
 * Where `scope` (a token's decoded resource URI, e.g. `myhub.azure-devices.net/devices/d1`) reaches
 * `resource`, given as its decoded path segments (`['myhub.azure-devices.net', 'devices', 'd1', 'modules', 'm1']`).
 */
export function reach(scope: string, resource: readonly string[]): Reach {
  const granted = scope.toLowerCase().split('/');
  while (granted.length > 0 && granted[granted.length - 1] === '') granted.pop(); // `hub/devices/` is `hub/devices`
  const wanted = withoutTrailingEmpty(resource);
  if (granted.length === 0 || granted.length > wanted.length) return undefined;
  if (!granted.every((segment, i) => segment === wanted[i]!.toLowerCase())) return undefined;
  return granted.length === wanted.length ? 'exact' : 'above';
}

/** A device's or a module's resource: `{host}/devices/{deviceId}[/modules/{moduleId}]`. */
export function identityResource(hostName: string, deviceId: string, moduleId?: string): string[] {
  return [hostName, 'devices', deviceId, ...(moduleId ? ['modules', moduleId] : [])];
}

/** The resource a request URI acts on (a REST path, an AMQP address or audience): its segments, each URL-decoded. */
export function uriResource(uri: string): string[] {
  return withoutTrailingEmpty(uri.split('/').map(decodeSegment));
}

function withoutTrailingEmpty(segments: readonly string[]): string[] {
  let end = segments.length;
  while (end > 0 && segments[end - 1] === '') end--;
  return segments.slice(0, end);
}

/** URL-decoded; a malformed %-sequence stays as it is: it then matches no token's (decoded) scope. */
export function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
