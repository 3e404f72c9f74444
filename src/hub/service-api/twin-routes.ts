import type { IdentityRecord } from '../store/identity-store.js';
import { etagOf, type Registry } from '../registry/registry.js';
import type { Twins } from '../twins/twin-service.js';
import type { TwinIdentity } from '../twins/document.js';
import type { TwinKey } from '../twins/twin-state.js';
import type { Right } from '../auth/policies.js';
import type { RequestContext, Route, RouteResult } from './router.js';

/** The identity fields of a twin document, as the registry record has them. */
export function twinIdentity(record: IdentityRecord): TwinIdentity {
  return {
    deviceEtag: etagOf(record),
    status: record.status,
    ...(record.statusReason !== null ? { statusReason: record.statusReason } : {}),
    statusUpdateTime: record.statusUpdatedTime,
    connectionState: record.connectionState,
    lastActivityTime: record.lastActivityTime,
    cloudToDeviceMessageCount: 0,
    authenticationType: record.authenticationType ?? 'sas',
    x509Thumbprint: { primaryThumbprint: record.primaryThumbprint ?? null, secondaryThumbprint: record.secondaryThumbprint ?? null },
    ...(record.moduleId
      ? {}
      : { capabilities: record.capabilities, deviceScope: record.deviceScope, parentScopes: record.parentScopes ?? [] }),
    ...(record.modelId ? { modelId: record.modelId } : {}),
  };
}

// IoT Hub lets a twin be read with RegistryRead too; writing it takes ServiceConnect.
const READ: Right[] = ['ServiceConnect', 'RegistryRead'];

/** Device and module twins over HTTPS, as azure-iothub's Registry (getTwin, updateTwin, ...) calls them. */
export function twinRoutes(registry: Registry, twins: Twins): Route[] {
  // The registry answers 404 DeviceNotFound / ModuleNotFound before the twin is touched.
  const keyOf = ({ params }: RequestContext): TwinKey => {
    registry.get(params.deviceId, params.moduleId);
    return params.moduleId ? { deviceId: params.deviceId, moduleId: params.moduleId } : { deviceId: params.deviceId };
  };
  const document = (key: TwinKey): RouteResult => {
    const body = twins.toDocument(key, twinIdentity(registry.get(key.deviceId, key.moduleId)));
    return { status: 200, body, headers: { ETag: `"${body.etag}"` } };
  };
  const ifMatch = (ctx: RequestContext) => ctx.headers['if-match'];

  const paths = [
    { path: '/twins/:deviceId', of: 'Devices' },
    { path: '/twins/:deviceId/modules/:moduleId', of: 'Modules' },
  ] as const;
  return paths.flatMap(({ path, of }): Route[] => [
    { operation: `${of}_GetTwin`, method: 'GET', path, right: READ, handle: (ctx) => document(keyOf(ctx)) },
    {
      operation: `${of}_UpdateTwin`,
      method: 'PATCH',
      path,
      right: 'ServiceConnect',
      handle: (ctx) => {
        const key = keyOf(ctx);
        twins.patchFromService(key, ctx.body, ifMatch(ctx));
        return document(key);
      },
    },
    {
      operation: `${of}_ReplaceTwin`,
      method: 'PUT',
      path,
      right: 'ServiceConnect',
      handle: (ctx) => {
        const key = keyOf(ctx);
        twins.replaceFromService(key, ctx.body, ifMatch(ctx));
        return document(key);
      },
    },
  ]);
}
