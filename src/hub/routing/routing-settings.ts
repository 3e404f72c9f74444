/**
 * A hub's message routing, as IoT Hub's resource keeps it (`properties.routing` of `az iot hub show`,
 * ARM's RoutingProperties): routes by data source and condition, the fallback route, enrichments.
 * The local hub serves one endpoint, the built-in `events`; a route or an enrichment naming another
 * is refused here rather than dropping what it would carry.
 */

/** The data sources a route may take, as ARM spells them. */
export const ROUTING_SOURCES = [
  'DeviceMessages',
  'TwinChangeEvents',
  'DeviceLifecycleEvents',
  'DeviceConnectionStateEvents',
  'DigitalTwinChangeEvents',
  'DeviceJobLifecycleEvents',
] as const;

export type RoutingSource = (typeof ROUTING_SOURCES)[number];

/** The sources the local hub emits nothing for; routes of theirs are kept, and get nothing (the hub says so at start). */
export const SILENT_SOURCES: ReadonlySet<RoutingSource> = new Set(['DigitalTwinChangeEvents', 'DeviceJobLifecycleEvents']);

/** The built-in endpoint's name in routes and enrichments. */
export const BUILT_IN_ENDPOINT = 'events';

export interface RouteSettings {
  name: string;
  source: RoutingSource;
  /** The routing query; 'true' when the route has none. */
  condition: string;
  isEnabled: boolean;
}

export interface EnrichmentSettings {
  key: string;
  /** A static string, `$iothubname`, or a `$twin.tags...`/`$twin.properties.desired...`/`$twin.properties.reported...` path. */
  value: string;
}

export interface RoutingSettings {
  /** The routes to the built-in endpoint (the only endpoint there is). */
  routes: RouteSettings[];
  /** The fallback route: device messages no route took go to the built-in endpoint, when it is enabled and its condition holds. */
  fallback: { isEnabled: boolean; condition: string };
  /** Applied to everything the built-in endpoint gets through routing. */
  enrichments: EnrichmentSettings[];
}

/** Routing settings the hub cannot take; the message says which entry and why, in one line. */
export class RoutingSettingsError extends Error {}

// IoT Hub's limits: 100 routes (S1-S3), 10 enrichments; names of letters, digits, '-', '.', '_'.
const MAX_ROUTES = 100;
const MAX_ENRICHMENTS = 10;
const ROUTE_NAME = /^[A-Za-z0-9\-._]{1,64}$/;
const ENRICHMENT_KEY = /^[A-Za-z0-9\-._]{1,64}$/;
const ENRICHMENT_VALUE = /^(\$iothubname|\$twin\.(tags|properties\.desired|properties\.reported)(\.[^.\s]+)+|[^$].*)$/;

/**
 * Reads routing settings from what `az iot hub show` prints (the whole hub, or its `properties`, or
 * `properties.routing`). Custom endpoints are refused: only `events` is served.
 */
export function parseRoutingSettings(json: unknown): RoutingSettings {
  const routing = routingObject(json);
  const declared = customEndpointNames(routing.endpoints);
  const endpointsOf = (what: string, names: unknown): void => {
    if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string')) {
      throw new RoutingSettingsError(`${what} needs endpointNames, a list with the endpoint's name ("${BUILT_IN_ENDPOINT}")`);
    }
    for (const name of names as string[]) {
      if (name === BUILT_IN_ENDPOINT) continue;
      throw new RoutingSettingsError(
        declared.has(name)
          ? `${what} goes to '${name}', a custom endpoint: the local hub serves only the built-in endpoint '${BUILT_IN_ENDPOINT}'`
          : `${what} goes to '${name}', which is not an endpoint: the local hub serves only the built-in endpoint '${BUILT_IN_ENDPOINT}'`,
      );
    }
  };

  const routes = listOf(routing.routes, 'routes').map((entry, i) => {
    const route = objectOf(entry, `routes[${i}]`);
    const name = route.name;
    if (typeof name !== 'string' || !ROUTE_NAME.test(name)) {
      throw new RoutingSettingsError(`routes[${i}] needs a name of 1 to 64 letters, digits, '-', '.' or '_'`);
    }
    const what = `route '${name}'`;
    endpointsOf(what, route.endpointNames);
    return {
      name,
      source: sourceOf(route.source, what),
      condition: conditionOf(route.condition, what),
      isEnabled: enabledOf(route.isEnabled, what),
    };
  });
  if (routes.length > MAX_ROUTES) throw new RoutingSettingsError(`${routes.length} routes: IoT Hub allows ${MAX_ROUTES}`);
  const names = new Set<string>();
  for (const { name } of routes) {
    if (names.has(name.toLowerCase())) throw new RoutingSettingsError(`two routes are named '${name}'`);
    names.add(name.toLowerCase());
  }

  let fallback = { isEnabled: true, condition: 'true' }; // a hub's fallback route is enabled until turned off
  if (routing.fallbackRoute !== undefined && routing.fallbackRoute !== null) {
    const route = objectOf(routing.fallbackRoute, 'fallbackRoute');
    if (route.source !== undefined && route.source !== 'DeviceMessages') {
      throw new RoutingSettingsError(`the fallback route's source is DeviceMessages, not ${JSON.stringify(route.source)}`);
    }
    endpointsOf('the fallback route', route.endpointNames ?? [BUILT_IN_ENDPOINT]);
    fallback = {
      isEnabled: enabledOf(route.isEnabled, 'the fallback route'),
      condition: conditionOf(route.condition, 'the fallback route'),
    };
  }

  const enrichments = listOf(routing.enrichments, 'enrichments').map((entry, i) => {
    const enrichment = objectOf(entry, `enrichments[${i}]`);
    const { key, value } = enrichment;
    if (typeof key !== 'string' || !ENRICHMENT_KEY.test(key)) {
      throw new RoutingSettingsError(`enrichments[${i}] needs a key of 1 to 64 letters, digits, '-', '.' or '_'`);
    }
    const what = `enrichment '${key}'`;
    if (typeof value !== 'string' || !ENRICHMENT_VALUE.test(value)) {
      throw new RoutingSettingsError(
        `${what} needs a value: a static string, $iothubname, or a path under $twin.tags, $twin.properties.desired or $twin.properties.reported`,
      );
    }
    endpointsOf(what, enrichment.endpointNames);
    return { key, value };
  });
  if (enrichments.length > MAX_ENRICHMENTS)
    throw new RoutingSettingsError(`${enrichments.length} enrichments: IoT Hub allows ${MAX_ENRICHMENTS}`);
  return { routes, fallback, enrichments };
}

function routingObject(json: unknown): Record<string, unknown> {
  let routing = objectOf(json, 'the routing settings');
  if (isObject(routing.properties)) routing = routing.properties;
  if (isObject(routing.routing)) routing = routing.routing;
  if (!('routes' in routing) && !('fallbackRoute' in routing) && !('enrichments' in routing)) {
    throw new RoutingSettingsError(
      'the routing settings hold no routes, fallbackRoute or enrichments (give properties.routing of `az iot hub show`, or an object with them)',
    );
  }
  return routing;
}

/** The names of the custom endpoints a hub's settings declare (eventHubs, storageContainers, ...). */
function customEndpointNames(endpoints: unknown): Set<string> {
  const names = new Set<string>();
  if (!isObject(endpoints)) return names;
  for (const list of Object.values(endpoints)) {
    if (!Array.isArray(list)) continue;
    for (const endpoint of list) if (isObject(endpoint) && typeof endpoint.name === 'string') names.add(endpoint.name);
  }
  return names;
}

function sourceOf(source: unknown, what: string): RoutingSource {
  const found = ROUTING_SOURCES.find((s) => typeof source === 'string' && s.toLowerCase() === source.toLowerCase());
  if (!found)
    throw new RoutingSettingsError(`${what} has the source ${JSON.stringify(source)}: it is one of ${ROUTING_SOURCES.join(', ')}`);
  return found;
}

function conditionOf(condition: unknown, what: string): string {
  if (condition === undefined || condition === null || condition === '') return 'true';
  if (typeof condition !== 'string') throw new RoutingSettingsError(`${what} has a condition that is not a string`);
  return condition;
}

function enabledOf(isEnabled: unknown, what: string): boolean {
  if (isEnabled === undefined) return true;
  if (typeof isEnabled !== 'boolean')
    throw new RoutingSettingsError(`${what} has isEnabled ${JSON.stringify(isEnabled)}, not true or false`);
  return isEnabled;
}

function listOf(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new RoutingSettingsError(`${what} is not a list`);
  return value;
}

function objectOf(value: unknown, what: string): Record<string, unknown> {
  if (!isObject(value)) throw new RoutingSettingsError(`${what} is not a JSON object`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
