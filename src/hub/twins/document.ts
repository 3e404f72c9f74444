import type { JsonObject } from './json.js';
import type { TwinKey, TwinState } from './twin-state.js';
import type { TwinConfigurations } from '../configurations/configuration.js';

/** The identity fields a twin document shows, as the registry knows them. */
export interface TwinIdentity {
  deviceEtag: string;
  status: 'enabled' | 'disabled';
  statusReason?: string;
  statusUpdateTime: string;
  connectionState: 'Connected' | 'Disconnected';
  lastActivityTime: string;
  cloudToDeviceMessageCount: number;
  authenticationType: 'sas' | 'selfSigned' | 'certificateAuthority' | 'none';
  /** A self-signed identity's thumbprints; absent, both null. */
  x509Thumbprint?: { primaryThumbprint: string | null; secondaryThumbprint: string | null };
  /** Device twins only; module twins have none. */
  capabilities?: { iotEdge: boolean };
  /** The IoT Plug and Play model id the identity announced, if it did. */
  modelId?: string;
  /** Device twins only: IoT Edge scopes. */
  deviceScope?: string;
  parentScopes?: string[];
}

/** A twin section as documents show it: its values, then `$metadata` and `$version`. */
export type SectionDocument = JsonObject & { $metadata: JsonObject; $version: number };

/** The twin as GET /twins/{id} (and the query language's `devices`/`devices.modules`) return it. */
export interface TwinDocument {
  deviceId: string;
  moduleId?: string;
  etag: string;
  deviceEtag: string;
  status: TwinIdentity['status'];
  statusReason?: string;
  statusUpdateTime: string;
  connectionState: TwinIdentity['connectionState'];
  lastActivityTime: string;
  cloudToDeviceMessageCount: number;
  authenticationType: TwinIdentity['authenticationType'];
  x509Thumbprint: { primaryThumbprint: string | null; secondaryThumbprint: string | null };
  modelId: string;
  version: number;
  tags?: JsonObject;
  properties: { desired: SectionDocument; reported: SectionDocument };
  capabilities?: { iotEdge: boolean };
  /** The automatic configurations that target the twin; absent when none does. */
  configurations?: TwinConfigurations;
  deviceScope?: string;
  parentScopes?: string[];
}

/**
 * What a device gets when it asks for its twin over MQTT: desired and reported with their
 * `$version`, without `$metadata` (IoT Hub's MQTT doc shows none, and the device SDKs ignore it).
 */
export interface DeviceTwinView {
  desired: JsonObject & { $version: number };
  reported: JsonObject & { $version: number };
}

/**
 * Builds the twin document. Like IoT Hub, a twin without tags shows no `tags` member; keys come in
 * IoT Hub's order, so documents read like the real ones.
 */
export function twinDocument(key: TwinKey, state: TwinState, identity: TwinIdentity, configurations?: TwinConfigurations): TwinDocument {
  return {
    deviceId: key.deviceId,
    ...(key.moduleId ? { moduleId: key.moduleId } : {}),
    etag: state.etag,
    deviceEtag: identity.deviceEtag,
    status: identity.status,
    ...(identity.statusReason !== undefined ? { statusReason: identity.statusReason } : {}),
    statusUpdateTime: identity.statusUpdateTime,
    connectionState: identity.connectionState,
    lastActivityTime: identity.lastActivityTime,
    cloudToDeviceMessageCount: identity.cloudToDeviceMessageCount,
    authenticationType: identity.authenticationType,
    x509Thumbprint: identity.x509Thumbprint ?? { primaryThumbprint: null, secondaryThumbprint: null },
    modelId: identity.modelId ?? '',
    version: state.version,
    ...(Object.keys(state.tags).length > 0 ? { tags: state.tags } : {}),
    properties: twinProperties(state),
    ...(identity.capabilities ? { capabilities: identity.capabilities } : {}),
    ...(configurations ? { configurations } : {}),
    ...(identity.deviceScope ? { deviceScope: identity.deviceScope } : {}),
    ...(identity.parentScopes ? { parentScopes: identity.parentScopes } : {}),
  };
}

/** A twin's properties as documents show them: each section with its `$metadata` and `$version`. */
export function twinProperties(state: TwinState): { desired: SectionDocument; reported: SectionDocument } {
  return {
    desired: { ...state.desired, $metadata: state.desiredMetadata, $version: state.desiredVersion },
    reported: { ...state.reported, $metadata: state.reportedMetadata, $version: state.reportedVersion },
  };
}

export function deviceTwinView(state: TwinState): DeviceTwinView {
  return {
    desired: { ...state.desired, $version: state.desiredVersion },
    reported: { ...state.reported, $version: state.reportedVersion },
  };
}
