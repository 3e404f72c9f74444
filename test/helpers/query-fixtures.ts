// A fleet of twin documents shaped like GET /twins/{id} answers, varied by index so that every
// filter in the query tests selects some twins but not all. Deterministic: no randomness.

import type { QuerySource, TwinDocument } from '../../src/hub/query/index.js';

export const REGIONS = ['US', 'EU', 'APAC'];
export const FIRMWARES = ['1.2.0', '2.0.1', 'beta-2.1'];

const metadata = (at: string) => ({ $lastUpdated: at });

export function deviceTwin(i: number): TwinDocument {
  const deviceId = `device-${String(i).padStart(4, '0')}`;
  const updated = new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString();

  const tags: Record<string, unknown> = {};
  if (i % 10 !== 9) tags.location = { region: REGIONS[i % 3], plant: `plant-${i % 4}` };
  tags.floor = i % 11 === 0 ? String(i % 5) : i % 5; // some floors are strings: comparisons must not coerce
  if (i % 17 === 0) tags.group = 'blue';

  const reported: Record<string, unknown> = { temperature: 15 + (i % 20) + 0.5, firmware: FIRMWARES[i % 3] };
  if (i % 4 === 0) reported.rebootTime = new Date(Date.UTC(2024, 0, 1) + i * 3_600_000).toISOString();
  if (i % 13 === 0) reported.connectivity = null;
  else if (i % 2 === 0) reported.connectivity = (i >> 1) % 2 === 0 ? 'wifi' : 'wired';
  else if (i % 5 === 1) reported.connectivity = { type: 'cellular' };
  if (i % 6 === 0) reported.maintenance = true;
  else if (i % 6 === 1) reported.maintenance = false;

  return {
    deviceId,
    etag: 'AAAAAAAAAAE=',
    deviceEtag: 'NjI3NjUxOTE=',
    status: i % 7 === 0 ? 'disabled' : 'enabled',
    statusUpdateTime: '0001-01-01T00:00:00Z',
    connectionState: (i >> 2) % 2 === 0 ? 'Connected' : 'Disconnected',
    lastActivityTime: updated,
    cloudToDeviceMessageCount: i % 4,
    authenticationType: 'sas',
    x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
    version: 1 + (i % 9),
    tags,
    properties: {
      desired: { telemetryInterval: 30 * (1 + (i % 3)), $metadata: metadata(updated), $version: 2 },
      reported: { ...reported, $metadata: metadata(updated), $version: 1 + (i % 7) },
    },
    capabilities: { iotEdge: i % 10 === 0 },
  };
}

/** Devices whose index ends in 0, 1 or 2 have a 'sensor' module; those ending in 0 also an 'edgeAgent'. */
export function moduleTwins(i: number): TwinDocument[] {
  if (i % 10 > 2) return [];
  const device = deviceTwin(i);
  const module = (moduleId: string, status: string): TwinDocument => ({
    deviceId: device.deviceId,
    moduleId,
    etag: 'AAAAAAAAAAE=',
    deviceEtag: 'NjI3NjUxOTE=',
    status: 'enabled',
    statusUpdateTime: '0001-01-01T00:00:00Z',
    connectionState: device.connectionState,
    lastActivityTime: device.lastActivityTime,
    cloudToDeviceMessageCount: 0,
    authenticationType: 'sas',
    x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
    version: 1,
    tags: { role: moduleId },
    properties: {
      desired: { $metadata: {}, $version: 1 },
      reported: { status, $metadata: {}, $version: 1 },
    },
  });
  const modules = [module('sensor', i % 2 === 0 ? 'scanning' : 'idle')];
  if (i % 10 === 0) modules.push(module('edgeAgent', 'running'));
  return modules;
}

export interface Fleet {
  devices: TwinDocument[];
  modules: TwinDocument[];
  source: QuerySource;
}

export function fleet(size: number): Fleet {
  const indexes = Array.from({ length: size }, (_, i) => i);
  const devices = indexes.map(deviceTwin);
  const modules = indexes.flatMap(moduleTwins);
  return { devices, modules, source: { devices: () => devices, modules: () => modules, jobs: () => [] } };
}
