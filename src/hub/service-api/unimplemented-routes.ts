import { HubError, hubErrors } from '../errors.js';
import { Router, type Route } from './router.js';

/**
 * Routes IoT Hub serves and the local hub does not, with the feature each belongs to. The HTTP
 * handler looks here only when no real route matched, so a feature that lands takes its paths back
 * by adding its routes to the hub's router: nothing here needs to change for it (remove its rows
 * to keep the table true). Paths are as IoT Hub's REST API reference has them.
 */
const MISSING: ReadonlyArray<{ feature: string; routes: ReadonlyArray<readonly [method: string, path: string]> }> = [
  {
    feature: 'jobs (scheduled direct methods and twin updates, /jobs/v2)',
    routes: [['GET', '/jobs/v2/query'], ['PUT', '/jobs/v2/:jobId'], ['GET', '/jobs/v2/:jobId'], ['POST', '/jobs/v2/:jobId/cancel']],
  },
  {
    feature: 'import and export jobs (/jobs/create)',
    routes: [['POST', '/jobs/create'], ['GET', '/jobs'], ['GET', '/jobs/:jobId'], ['DELETE', '/jobs/:jobId']],
  },
  {
    feature: 'automatic device configurations and IoT Edge deployments (/configurations)',
    routes: [
      ['GET', '/configurations'], ['POST', '/configurations/testQueries'], ['GET', '/configurations/:id'],
      ['PUT', '/configurations/:id'], ['DELETE', '/configurations/:id'], ['POST', '/devices/:deviceId/applyConfigurationContent'],
    ],
  },
  {
    feature: 'the IoT Plug and Play digital twin API (/digitaltwins)',
    routes: [
      ['GET', '/digitaltwins/:id'], ['PATCH', '/digitaltwins/:id'], ['POST', '/digitaltwins/:id/commands/:command'],
      ['POST', '/digitaltwins/:id/components/:component/commands/:command'],
    ],
  },
  {
    feature: 'file upload',
    routes: [['POST', '/devices/:deviceId/files'], ['POST', '/devices/:deviceId/files/notifications']],
  },
  {
    feature: 'the HTTPS device transport',
    routes: [
      ['POST', '/devices/:deviceId/messages/events'], ['POST', '/devices/:deviceId/modules/:moduleId/messages/events'],
      ['GET', '/devices/:deviceId/messages/deviceBound'], ['DELETE', '/devices/:deviceId/messages/deviceBound/:etag'],
      ['POST', '/devices/:deviceId/messages/deviceBound/:etag/abandon'],
    ],
  },
  {
    feature: 'cloud-to-device messages (queue purge and feedback)',
    routes: [
      ['DELETE', '/devices/:deviceId/commands'], ['GET', '/messages/serviceBound/feedback'],
      ['DELETE', '/messages/serviceBound/feedback/:lockToken'], ['POST', '/messages/serviceBound/feedback/:lockToken/abandon'],
    ],
  },
  { feature: 'service statistics (/statistics/service)', routes: [['GET', '/statistics/service']] },
  { feature: 'device streams', routes: [['POST', '/twins/:deviceId/streams/:streamName']] },
];

interface MissingRoute extends Route {
  feature: string;
}

// The router compiles the paths; these routes are only matched, never handled.
const missing = new Router().add(
  ...MISSING.flatMap(({ feature, routes }) =>
    routes.map(([method, path]): MissingRoute => ({ method, path, feature, right: [], handle: () => ({ status: 501 }) })),
  ),
);

/** The 501 NotImplemented for a route IoT Hub has and the local hub lacks; undefined for a path IoT Hub does not have either. */
export function notImplemented(method: string, path: string): HubError | undefined {
  const found = missing.match(method, path);
  if (typeof found !== 'object') return undefined;
  const { feature } = found.route as MissingRoute;
  return hubErrors.notImplemented(`The local hub does not implement ${feature}; see "Differences from Azure IoT Hub" in its README`);
}
