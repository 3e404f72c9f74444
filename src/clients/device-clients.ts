import './os-release.js'; // before any Azure SDK
import { createRequire } from 'node:module';
import deviceSdk from 'azure-iot-device';
import type { DeviceConnection } from './connection-string.js';
import { ExitCode, ToolkitError } from './errors.js';
import { hubAgent, isLocalHub, type HubTransport } from './hub-transport.js';

export type DeviceClient = deviceSdk.Client;

/** A constructor of one of the device SDK's transports (Mqtt, MqttWs, Amqp, AmqpWs, Http). */
type TransportClass = new (...args: never[]) => {
  emit(event: string | symbol, ...args: unknown[]): boolean;
  listenerCount(event: string | symbol): number;
  enableMethods(callback: (err?: Error) => void): void;
  sendMethodResponse(response: unknown, done: (err?: Error) => void): void;
};

/** What a device app needs from its transport. */
export type DeviceFeature = 'telemetry' | 'twin' | 'methods' | 'c2d';

const FEATURE_NAMES: Record<DeviceFeature, string> = {
  telemetry: 'device-to-cloud messages',
  twin: 'device twins',
  methods: 'direct methods',
  c2d: 'cloud-to-device messages',
};

interface TransportSpec {
  /** What the device SDK offers over it. */
  features: readonly DeviceFeature[];
  /** Whether the local hub serves it (a real IoT Hub serves them all). */
  local: boolean;
  /** What the local hub does not serve over it yet, where it serves the rest. */
  notLocal?: readonly DeviceFeature[];
  /** The SDK's transport class, loaded when used. */
  load(): Promise<TransportClass>;
}

const ALL: readonly DeviceFeature[] = ['telemetry', 'twin', 'methods', 'c2d'];
// Loaded once a process: the first load also switches mqtt-packet's number cache off, which needs resolving three packages.
let mqttLoaded: Promise<typeof import('azure-iot-device-mqtt')> | undefined;
const mqtt = () =>
  (mqttLoaded ??= import('azure-iot-device-mqtt').then((module) => {
    writeMqttNumbersUncached();
    return module.default;
  }));
const amqp = async () => (await import('azure-iot-device-amqp')).default;

/**
 * mqtt-packet fills a cache of 65,536 two-byte Buffers the first time it writes a packet, for every
 * packet id it might write: about a sixth of a device command's CPU, and memory it never frees. The
 * SDK's mqtt client has its own copy of mqtt-packet; this turns that cache off there (packet ids are
 * then written into a fresh two-byte Buffer each). Where mqtt-packet is not where mqtt finds it, the
 * cache stays.
 */
function writeMqttNumbersUncached(): void {
  try {
    const fromSdk = createRequire(createRequire(import.meta.url).resolve('azure-iot-device-mqtt'));
    const packets = createRequire(fromSdk.resolve('mqtt'))('mqtt-packet') as { writeToStream: { cacheNumbers: boolean } };
    packets.writeToStream.cacheNumbers = false;
  } catch {
    // the cache stays: slower to start, the same on the wire
  }
}

/**
 * The device SDK's transports, by the names --transport takes. HTTPS has no twins or methods in the
 * SDK (nor on IoT Hub's HTTPS device API); its cloud-to-device messages are polled.
 */
const TRANSPORTS = {
  mqtt: { features: ALL, local: true, load: async () => (await mqtt()).Mqtt },
  'mqtt-ws': { features: ALL, local: true, load: async () => (await mqtt()).MqttWs },
  amqp: { features: ALL, local: true, load: async () => (await amqp()).Amqp },
  'amqp-ws': { features: ALL, local: true, load: async () => (await amqp()).AmqpWs },
  http: {
    features: ['telemetry', 'c2d'],
    local: true,
    load: async () => ((await import('azure-iot-device-http')).default as unknown as { Http: TransportClass }).Http,
  },
} satisfies Record<string, TransportSpec>;

export type DeviceTransport = keyof typeof TRANSPORTS;
export const DEVICE_TRANSPORTS = Object.keys(TRANSPORTS) as DeviceTransport[];

/** Whether the device SDK offers all of `features` over `transport`. */
export function offers(transport: DeviceTransport, features: readonly DeviceFeature[]): boolean {
  return features.every((f) => (TRANSPORTS[transport].features as readonly DeviceFeature[]).includes(f));
}

/** Whether the local hub serves all of `features` over `transport` (where the SDK offers them). */
export function localHubServes(transport: DeviceTransport, features: readonly DeviceFeature[]): boolean {
  const spec: TransportSpec = TRANSPORTS[transport];
  return spec.local && !features.some((f) => spec.notLocal?.includes(f));
}

/**
 * Refuses (exit 2) a transport over which the SDK lacks one of `features`, or that the local hub does
 * not serve, saying which transports would do.
 */
export function checkTransport(transport: DeviceTransport, features: readonly DeviceFeature[], hub: HubTransport): void {
  const missing = features.filter((f) => !offers(transport, [f]));
  const local = isLocalHub(hub);
  const served = (name: DeviceTransport): boolean => localHubServes(name, features);
  const usable = DEVICE_TRANSPORTS.filter((name) => offers(name, features) && (!local || served(name)));
  if (missing.length > 0) {
    throw new ToolkitError(
      `the device SDK offers no ${featureNames(missing, 'and')} over ${transport}: use --transport ${orList(usable)}.`,
      ExitCode.usage,
    );
  }
  if (local && !served(transport)) {
    const what = TRANSPORTS[transport].local ? `${featureNames(features, 'and')} over ${transport}` : transport;
    throw new ToolkitError(
      `${what} is not served by the local hub yet (a real IoT Hub serves it): use --transport ${orList(usable)}.`,
      ExitCode.usage,
    );
  }
}

/** The features in words: 'direct methods or device twins'. */
export function featureNames(features: readonly DeviceFeature[], joiner = 'or'): string {
  return orList(
    features.map((f) => FEATURE_NAMES[f]),
    joiner,
  );
}

function orList(names: string[], joiner = 'or'): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} ${joiner} ${names[names.length - 1]}`;
}

/** The answer to a direct method the app registered no handler for. */
export interface UnknownMethodAnswer {
  status: number;
  payload: unknown;
}

export interface DeviceClientOptions {
  /** What the app uses: a transport without it is refused before anything connects. */
  features?: readonly DeviceFeature[];
  /** Answer calls to methods nobody registered with this (else the caller waits for its timeout). */
  unknownMethod?: UnknownMethodAnswer;
  /** Called each time the SDK's subscription to direct methods is in place (or has failed). */
  onMethodsEnabled?: (err?: Error) => void;
}

/**
 * The SDK's transport, with what the client itself has no API for. azure-iot-device has no
 * catch-all method handler (Python's on_method_request_received): each call is emitted as
 * method_<name> (by the MQTT transport itself, by the AMQP transport's method client), and one
 * nobody listens to is answered here. Nor does it tell when its method subscription is in place
 * (onDeviceMethod subscribes in the background).
 */
function withMethodHooks(Transport: TransportClass, options: DeviceClientOptions): TransportClass {
  const { unknownMethod, onMethodsEnabled } = options;
  return class extends Transport {
    constructor(...args: never[]) {
      super(...args);
      if (!unknownMethod) return;
      const emitter = (this as { _deviceMethodClient?: MethodEmitter })._deviceMethodClient ?? this;
      const emit = emitter.emit.bind(emitter);
      emitter.emit = (event: string | symbol, ...rest: unknown[]): boolean => {
        if (typeof event === 'string' && event.startsWith('method_') && emitter.listenerCount(event) === 0) {
          const { requestId } = rest[0] as { requestId: string };
          this.sendMethodResponse({ requestId, ...unknownMethod }, () => {});
          return true;
        }
        return emit(event, ...rest);
      };
    }

    override enableMethods(callback: (err?: Error) => void): void {
      super.enableMethods((err?: Error) => {
        onMethodsEnabled?.(err);
        callback(err);
      });
    }
  };
}

/** What emits a transport's method calls: the transport (MQTT) or its method client (AMQP). */
interface MethodEmitter {
  emit(event: string | symbol, ...args: unknown[]): boolean;
  listenerCount(event: string | symbol): number;
}

/**
 * An azure-iot-device client over one of the SDK's transports (MQTT by default). For a local hub, the
 * SDK's own GatewayHostName setting points MQTT and AMQP at the hub's port, an https agent does the
 * same for MQTT and AMQP over WebSockets and HTTPS, and the CA is passed with setOptions.
 */
export async function createDeviceClient(
  connection: DeviceConnection,
  transportName: DeviceTransport = 'mqtt',
  options: DeviceClientOptions = {},
): Promise<DeviceClient> {
  const { transport } = connection;
  checkTransport(transportName, options.features ?? [], transport);
  let connectionString = connection.connectionString;
  if (transport.port !== undefined && (transportName === 'mqtt' || transportName === 'amqp') && !connection.gatewayHostName) {
    connectionString += `;GatewayHostName=${connection.hostName}:${transport.port}`;
  }
  const Base = await TRANSPORTS[transportName].load();
  const Transport = options.unknownMethod || options.onMethodsEnabled ? withMethodHooks(Base, options) : Base;
  const client = connection.x509
    ? certificateClient(connection, transportName, Transport)
    : connection.moduleId
      ? deviceSdk.ModuleClient.fromConnectionString(connectionString, Transport)
      : deviceSdk.Client.fromConnectionString(connectionString, Transport);
  if (isLocalHub(transport)) await client.setOptions(localHubOptions(transportName, transport));
  return client as DeviceClient;
}

/**
 * A client that authenticates with the connection's certificate. The SDK takes no GatewayHostName
 * from an `x509=true` connection string, so its X509AuthenticationProvider carries the local hub's
 * port to MQTT and AMQP (a hub on IoT Hub's own ports needs none).
 */
function certificateClient(connection: DeviceConnection, transportName: DeviceTransport, Transport: TransportClass) {
  const { hostName, deviceId, moduleId, transport, x509 } = connection;
  const gateway =
    transport.port !== undefined && (transportName === 'mqtt' || transportName === 'amqp') ? `${hostName}:${transport.port}` : undefined;
  const provider = new deviceSdk.X509AuthenticationProvider({
    host: hostName,
    deviceId,
    ...(moduleId ? { moduleId } : {}),
    ...(gateway ? { gatewayHostName: gateway } : {}),
    x509,
  });
  const client = moduleId
    ? deviceSdk.ModuleClient.fromAuthenticationProvider(provider, Transport)
    : deviceSdk.Client.fromAuthenticationProvider(provider, Transport);
  certificateClients.add(client);
  return client;
}

/** The clients that authenticate with a certificate (see openClient). */
const certificateClients = new WeakSet<object>();

/**
 * The CA and, where the SDK dials port 443 itself, an agent to the hub's port: WebSockets, HTTPS, and
 * on every transport file upload's two REST calls (the SDK sends them with `http.agent`).
 */
function localHubOptions(transportName: DeviceTransport, transport: HubTransport): deviceSdk.DeviceClientOptions {
  const agent = hubAgent(transport);
  switch (transportName) {
    case 'mqtt-ws':
      return { ca: transport.ca, http: { agent }, mqtt: { webSocketAgent: agent } };
    case 'amqp-ws':
      return { ca: transport.ca, http: { agent }, amqp: { webSocketAgent: agent } };
    case 'http':
      // azure-iot-device-http answers setOptions only when it holds receive options: its default interval is
      // given (a poll a second), without `drain`, so that a poll takes one message and an app that stops
      // after --count messages seldom leaves one more locked (for the hub's lock timeout) behind it.
      return { ca: transport.ca, http: { agent, receivePolicy: { interval: 1 } } } as deviceSdk.DeviceClientOptions;
    default:
      return { ca: transport.ca, http: { agent } };
  }
}

/** How long a first connection may take, retries included. */
const OPEN_TIMEOUT_MS = 20_000;

/**
 * Opens a device client within a bound. The SDK's retry policy retries a connection the hub
 * refuses as busy (CONNACK 3, throttled) for up to 4 minutes, in silence; this gives up sooner
 * with the toolkit's "busy" error (exit 8), naming `what` was connecting. Resolves false when
 * `signal` aborts first (Ctrl-C while connecting); the caller closes the client either way.
 */
export async function openClient(client: DeviceClient, what: string, signal?: AbortSignal): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort = () => {};
  const cut = new Promise<boolean>((resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ToolkitError(
            `${what}: not connected within ${OPEN_TIMEOUT_MS / 1000} s: the hub is busy or unreachable; try again shortly.`,
            ExitCode.unavailable,
          ),
        ),
      OPEN_TIMEOUT_MS,
    );
    onAbort = () => resolve(false);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([client.open().then(() => true), cut]);
  } catch (err) {
    // The SDK's advice for a refusal is about keys; a certificate's refusal has other causes.
    if (certificateClients.has(client) && (err as Error)?.constructor?.name === 'UnauthorizedError') {
      throw new ToolkitError(
        `${what}: not authorized: the hub refused the certificate. Check that it is this device's (CN = the device id), that its thumbprint is registered (or its CA trusted) and that it is within its validity.`,
        ExitCode.unauthorized,
      );
    }
    throw err;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}
