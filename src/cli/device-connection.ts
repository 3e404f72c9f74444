import type { Command } from 'commander';
import { findConnection } from '../clients/config.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import type { HubConnection } from '../clients/service-clients.js';
import type { DeviceProtocol } from '../clients/device-clients.js';

export interface DeviceSideOptions {
  deviceId: string;
  moduleId: string;
  device?: boolean;
  connectionString?: string;
  websocket?: boolean;
}

/** The options every device-side command shares: which identity, how to connect. */
export function deviceSideOptions(command: Command): Command {
  return command
    .option('-d, --device-id <id>', 'the device (when no connection string is given)', 'myFirstDevice')
    .option('-m, --module-id <id>', 'the module on that device', 'myFirstModule')
    .option('--device', "act as the device itself, not as its module")
    .option('-c, --connection-string <cs>', 'device or module connection string (default: $IOTHUB_DEVICE_CONNECTION_STRING, .env, or looked up on the hub)')
    .option('--websocket', 'MQTT over WebSockets (port 443 on Azure) instead of MQTT');
}

export function protocolOf(opts: DeviceSideOptions): DeviceProtocol {
  return opts.websocket ? 'mqttws' : 'mqtt';
}

/**
 * A device or module connection string from the flag, the environment or .env; without one, the
 * identity's key is looked up in the registry with the service connection (the local hub's by
 * default), as a user would copy it from the portal.
 */
export async function resolveDeviceConnection(opts: DeviceSideOptions): Promise<{ connection: HubConnection; identity: string }> {
  const direct = findConnection('device', opts.connectionString);
  if (direct) {
    const { DeviceId, ModuleId } = direct.fields;
    return { connection: direct, identity: ModuleId ? `${DeviceId}/${ModuleId}` : DeviceId };
  }
  const service = findConnection('service', undefined, (p) => p.serviceConnectionString);
  if (!service) {
    throw new ToolkitError(
      "No device connection string: pass --connection-string, set IOTHUB_DEVICE_CONNECTION_STRING, or start a local hub with 'iothub-tut hub start' (in another terminal).",
      ExitCode.usage,
    );
  }
  const key = { deviceId: opts.deviceId, moduleId: opts.device ? undefined : opts.moduleId };
  const { identityConnection } = await import('../clients/identity-connection.js');
  return { connection: await identityConnection(service, key), identity: key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId };
}
