import { randomBytes } from 'node:crypto';

/** IoT Hub's permissions, as shared access policies grant them. */
export type Right = 'RegistryRead' | 'RegistryWrite' | 'ServiceConnect' | 'DeviceConnect';

export interface SharedAccessPolicy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: Right[];
}

/** The policies every new IoT hub has, with their rights. */
export const BUILT_IN_POLICIES: ReadonlyArray<{ keyName: string; rights: Right[] }> = [
  { keyName: 'iothubowner', rights: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'] },
  { keyName: 'service', rights: ['ServiceConnect'] },
  { keyName: 'device', rights: ['DeviceConnect'] },
  { keyName: 'registryRead', rights: ['RegistryRead'] },
  { keyName: 'registryReadWrite', rights: ['RegistryRead', 'RegistryWrite'] },
];

/** A 256-bit key, base64, like the keys IoT Hub generates. */
export function generateKey(): string {
  return randomBytes(32).toString('base64');
}

/** RegistryWrite implies RegistryRead on IoT Hub. */
export function grants(policy: SharedAccessPolicy, right: Right): boolean {
  return policy.rights.includes(right) || (right === 'RegistryRead' && policy.rights.includes('RegistryWrite'));
}
