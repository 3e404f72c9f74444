import type { Twin } from 'azure-iot-device';
import { createDeviceClient, openClient, type DeviceTransport } from '../clients/device-clients.js';
import type { DeviceConnection } from '../clients/connection-string.js';
import { explain } from '../clients/sdk-errors.js';

export interface UpdateReportedOptions {
  reported: Record<string, unknown>;
  /** The device SDK's transport (default MQTT). */
  transport?: DeviceTransport;
}

/**
 * The device side of a twin: patches the reported properties of the device or module of the
 * connection string, then reads the twin back for the reported section's new `$version`.
 */
export async function updateReported(
  connection: DeviceConnection,
  options: UpdateReportedOptions,
): Promise<{ version: number; reported: Record<string, unknown> }> {
  const client = await createDeviceClient(connection, options.transport, { features: ['twin'] });
  try {
    await openClient(client, 'updating reported properties');
    const twin: Twin = await client.getTwin();
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update(options.reported, (err?: Error) => (err ? reject(err) : resolve())),
    );
    await twin.get();
    const { $version, ...reported } = twin.properties.reported as Record<string, unknown> & { $version: number };
    delete reported.update; // the SDK keeps its update function on the section
    return { version: $version, reported };
  } catch (err) {
    throw explain(err, 'updating reported properties');
  } finally {
    await client.close().catch(() => undefined);
  }
}
