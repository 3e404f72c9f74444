import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { findConnection, resolveConnection } from '../clients/config.js';
import { environment } from '../clients/environment.js';
import {
  certificateConnection,
  type DeviceConnection,
  type EventHubConnection,
  type ServiceConnection,
} from '../clients/connection-string.js';
import type { DeviceTransport } from '../clients/device-clients.js';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { describeIdentity, type Identity } from '../clients/identity.js';
import { TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import { parseIntWithin, parseNonEmpty, parsePositiveInt, parseSeconds } from './parsers.js';

// The options that several commands share, each declared here once: how to reach the hub as the
// service, as a device, or at its Event Hub-compatible endpoint; and how long to wait.

const CONNECTION_STRING = '-c, --connection-string <cs>';

/**
 * --transport's choices, named here rather than read from device-clients.ts: importing that module
 * loads the device SDK, and parsing arguments (--help, a usage error) should load no SDK. `satisfies`
 * holds the names to device-clients' transports, none missing and none extra.
 */
const TRANSPORT_CHOICES = Object.keys({ mqtt: 1, 'mqtt-ws': 1, amqp: 1, 'amqp-ws': 1, http: 1 } satisfies Record<DeviceTransport, 1>);
const nonEmpty = parseNonEmpty('--connection-string');

/** -c for a command that acts as the service. */
export function serviceConnectionOption(command: Command): Command {
  return command.option(
    CONNECTION_STRING,
    'hub connection string (default: $IOTHUB_CONNECTION_STRING, .env, or the running local hub)',
    nonEmpty,
  );
}

export function serviceConnection(opts: { connectionString?: string }): ServiceConnection {
  return resolveConnection('service', opts.connectionString, (p) => p.serviceConnectionString);
}

/** -c for a command that reads the hub's Event Hub-compatible endpoint. */
export function eventHubConnectionOption(command: Command): Command {
  return command.option(
    CONNECTION_STRING,
    'Event Hub-compatible connection string (default: $EVENTHUB_CONNECTION_STRING, .env, or the running local hub)',
    nonEmpty,
  );
}

export function eventHubConnection(opts: { connectionString?: string }): EventHubConnection {
  return resolveConnection('eventhub', opts.connectionString, (p) => p.eventHubConnectionString);
}

/** -d and -m for a command that acts on a device, or on a module with -m. */
export function targetOptions(command: Command, device: string): Command {
  return command
    .option('-d, --device-id <id>', 'the device', device)
    .option('-m, --module-id <id>', 'a module on that device (default: the device itself)');
}

/** The timeouts of a direct method call, within IoT Hub's bounds ("Understand direct methods"). */
export function methodTimeoutOptions(command: Command): Command {
  return command
    .option(
      '--response-timeout <s>',
      'seconds IoT Hub waits for the device to answer (5 to 300)',
      parseIntWithin('--response-timeout', 5, 300),
      30,
    )
    .option(
      '--connect-timeout <s>',
      'seconds IoT Hub waits for an offline device to connect (0 to 300)',
      parseIntWithin('--connect-timeout', 0, 300),
      0,
    );
}

/** --count and --timeout, for a command that waits for things to arrive (patches, messages, reboots). */
export function countAndTimeoutOptions(command: Command, things: string, { timeout = true } = {}): Command {
  command.option('--count <n>', `exit after this many ${things}`, parsePositiveInt('--count'));
  if (timeout)
    command.option(
      '--timeout <s>',
      `give up after this many seconds (exit 5 if the ${things} have not arrived)`,
      parseSeconds('--timeout'),
    );
  return command;
}

interface DeviceSideValues {
  deviceId: string;
  moduleId?: string;
  device?: boolean;
  connectionString?: string;
  transport: DeviceTransport;
  websocket?: boolean;
  cert?: string;
  key?: string;
}

/**
 * -d, -m, --device, -c and --transport for a command that acts as a device (or, where `modules`,
 * as a module): which identity, and how to connect as it.
 */
export class DeviceSideOptions {
  constructor(
    private readonly command: Command,
    private readonly config: { device: string; modules: boolean },
  ) {
    command.option(
      '-d, --device-id <id>',
      'the device to act as (its key is looked up on the hub when no connection string is given)',
      config.device,
    );
    if (config.modules) {
      command
        .option('-m, --module-id <id>', 'the module on that device to act as', TUTORIAL_NAMES.module)
        .option('--device', 'act as the device itself, not as its module');
    }
    command
      .option(
        CONNECTION_STRING,
        `${config.modules ? 'device or module' : 'device'} connection string (default: $IOTHUB_DEVICE_CONNECTION_STRING, .env, or the key looked up on the hub)`,
        nonEmpty,
      )
      .addOption(
        new Option('--transport <name>', "the device SDK's transport (mqtt-ws, amqp-ws and http use port 443 on Azure)")
          .choices(TRANSPORT_CHOICES)
          .default('mqtt'),
      )
      .addOption(new Option('--websocket', 'the same as --transport mqtt-ws').conflicts('transport'))
      .option('--cert <file>', "authenticate with this X.509 client certificate (PEM; 'create-device --x509' makes one), with --key")
      .option('--key <file>', "the certificate's private key (PEM)");
  }

  get transport(): DeviceTransport {
    return this.values.websocket ? 'mqtt-ws' : this.values.transport;
  }

  /** A device connection string given at all (flag, environment, .env), checked against -d/-m; undefined when none is. */
  given(): DeviceConnection | undefined {
    const connection = findConnection('device', this.values.connectionString);
    if (connection) this.check(connection);
    return connection;
  }

  /**
   * The connection string given, or else the identity's key looked up in the registry with the
   * service connection (the running local hub's by default), as a user would copy it from the portal.
   */
  async resolve(): Promise<DeviceConnection> {
    const given = this.given();
    const x509 = this.certificate();
    if (x509) {
      // The hub and identity of the connection string given, else the hub of the service connection and -d/-m.
      const base = given ?? findConnection('service', undefined, (p) => p.serviceConnectionString);
      if (!base) throw noConnection();
      return certificateConnection(base, given ?? this.identity(), x509);
    }
    if (given?.key === '') {
      throw new ToolkitError(
        `The connection string is an X.509 device's (x509=true): pass its certificate and key with --cert and --key.`,
        ExitCode.usage,
      );
    }
    if (given) return given;
    const service = findConnection('service', undefined, (p) => p.serviceConnectionString);
    if (!service) throw noConnection();
    const { identityConnection } = await import('../clients/identity-connection.js');
    return identityConnection(service, this.identity());
  }

  /** The client certificate and key of --cert and --key, read; undefined when neither is given. */
  private certificate(): { cert: string; key: string } | undefined {
    const { cert, key } = this.values;
    if (cert === undefined && key === undefined) return undefined;
    if (cert === undefined || key === undefined) {
      throw new ToolkitError(
        `${cert === undefined ? '--key' : '--cert'} needs ${cert === undefined ? '--cert' : '--key'} too: a certificate and its private key.`,
        ExitCode.usage,
      );
    }
    return { cert: readPem(cert, '--cert', 'CERTIFICATE'), key: readPem(key, '--key', 'PRIVATE KEY') };
  }

  /** The identity -d, -m and --device name. */
  identity(): Identity {
    const { deviceId, moduleId, device } = this.values;
    return this.config.modules && !device ? { deviceId, moduleId } : { deviceId };
  }

  /** Whether the user typed this option (not its default). */
  typed(name: keyof DeviceSideValues): boolean {
    return this.command.getOptionValueSource(name) === 'cli';
  }

  private get values(): DeviceSideValues {
    return this.command.opts<DeviceSideValues>();
  }

  /** A connection string of the wrong kind, or one that -d, -m or --device contradict, is refused: the command would act as someone else. */
  private check(connection: DeviceConnection): void {
    const { deviceId, moduleId, device, connectionString } = this.values;
    const source = connectionString
      ? '--connection-string'
      : environment().IOTHUB_DEVICE_CONNECTION_STRING
        ? 'IOTHUB_DEVICE_CONNECTION_STRING'
        : '.env';
    const given = `the connection string (from ${source})`;
    const owner = describeIdentity(connection);
    const refuse = (message: string) => new ToolkitError(message, ExitCode.usage);
    if (connection.moduleId && !this.config.modules) {
      throw refuse(
        `Wrong kind of connection string: ${this.command.name()} acts as a device, and ${given} is for ${owner}; use the device's (portal: IoT hub > Devices > ${connection.deviceId}).`,
      );
    }
    if (this.typed('deviceId') && deviceId !== connection.deviceId) {
      throw refuse(
        `--device-id ${deviceId} disagrees with ${given}, which is for ${owner}: drop --device-id, or use the connection string of device '${deviceId}'.`,
      );
    }
    if (device && connection.moduleId) {
      throw refuse(
        `--device asks for device '${connection.deviceId}' itself, but ${given} is for ${owner}: drop --device, or use the device's connection string.`,
      );
    }
    if (this.typed('moduleId') && moduleId !== connection.moduleId) {
      throw refuse(
        `--module-id ${moduleId} disagrees with ${given}, which is for ${owner}: drop --module-id, or use the connection string of module '${connection.deviceId}/${moduleId}'.`,
      );
    }
  }
}

function noConnection(): ToolkitError {
  return new ToolkitError(
    "No device connection string: pass --connection-string, set IOTHUB_DEVICE_CONNECTION_STRING, or start a local hub with 'iothub-tut hub start' (in another terminal).",
    ExitCode.usage,
  );
}

/** A PEM file's text, refused with one line when it cannot be read or holds no `what` block. */
function readPem(file: string, option: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ToolkitError(
      `${option} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}.`,
      ExitCode.usage,
    );
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${what}-----`).test(text))
    throw new ToolkitError(`${option} ${file} holds no PEM ${what.toLowerCase()}.`, ExitCode.usage);
  return text;
}
