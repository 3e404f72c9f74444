/**
 * The identities the tutorials use, named as in their Python originals: the commands' defaults
 * and the demo's.
 */
export const TUTORIAL_NAMES = {
  /** CreateDeviceIdentity, CreateModule, the module twin tutorial and SimulatedDevice. */
  device: 'myFirstDevice',
  module: 'myFirstModule',
  /** Device management (dmpatterns_getstarted_device and _service). */
  managedDevice: 'myDeviceId',
  /** send-telemetry --devices K simulates simDevice-1..K. */
  simulatedDevicePrefix: 'simDevice',
} as const;

/** The direct method the jobs tutorial's device (simDevice.js) answers. */
export const LOCK_DOOR_METHOD = 'lockDoor';
