import { HubError, hubErrors } from '../errors.js';
import { Router } from './router.js';

/**
 * Routes IoT Hub serves and the local hub does not, with the feature each belongs to. The HTTP
 * handler looks here only when no real route matched, so a feature that lands takes its paths back
 * by adding its routes to the hub's router: nothing here needs to change for it (remove its rows
 * to keep the table true). Paths are as IoT Hub's REST API reference has them.
 */
const MISSING: ReadonlyArray<{ feature: string; routes: ReadonlyArray<readonly [method: string, path: string]> }> = [
  {
    feature: 'cloud-to-device feedback over HTTPS (the service AMQP endpoint serves it)',
    routes: [
      ['GET', '/messages/serviceBound/feedback'],
      ['DELETE', '/messages/serviceBound/feedback/:lockToken'],
      ['POST', '/messages/serviceBound/feedback/:lockToken/abandon'],
    ],
  },
  { feature: 'device streams', routes: [['POST', '/twins/:deviceId/streams/:streamName']] },
];

// The router compiles the paths; these routes are only matched, never handled.
const missing = new Router<{ method: string; path: string; feature: string }>().add(
  ...MISSING.flatMap(({ feature, routes }) => routes.map(([method, path]) => ({ method, path, feature }))),
);

/** The 501 NotImplemented for a route IoT Hub has and the local hub lacks; undefined for a path IoT Hub does not have either. */
export function notImplemented(method: string, path: string): HubError | undefined {
  const found = missing.match(method, path);
  if (typeof found !== 'object') return undefined;
  const { feature } = found.route;
  return hubErrors.notImplemented(`The local hub does not implement ${feature}; see "Differences from Azure IoT Hub" in its README`);
}
