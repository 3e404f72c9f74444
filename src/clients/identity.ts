/** A device, or a module on a device: what a twin, a key or a direct method belongs to. */
export interface Identity {
  deviceId: string;
  moduleId?: string;
}

/** `device 'd'` or `module 'd/m'`, as messages name an identity. */
export function describeIdentity(identity: Identity): string {
  return identity.moduleId ? `module '${identityName(identity)}'` : `device '${identity.deviceId}'`;
}

/** `d` or `d/m`. */
export function identityName(identity: Identity): string {
  return identity.moduleId ? `${identity.deviceId}/${identity.moduleId}` : identity.deviceId;
}

/** The command that registers the identity (for a module, its device too, when missing). */
export function createCommand(identity: Identity): string {
  return identity.moduleId
    ? `iothub-tut create-module -d ${shellWord(identity.deviceId)} -m ${shellWord(identity.moduleId)}`
    : `iothub-tut create-device -d ${shellWord(identity.deviceId)}`;
}

/** An id as it can be pasted into a shell (ids may hold characters such as `$`, `(` or `'`), in double quotes since messages quote with single ones. */
function shellWord(text: string): string {
  return /^[\w.:@+=%-]+$/.test(text) ? text : `"${text.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}
