import type { Server as HttpServer } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { X509Certificate } from 'node:crypto';
import { mkdirSync, chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { WebSocketServer } from 'ws';
import { loadOnFirstUse } from './load-on-first-use.js';
import { openDatabase, type Db } from './store/database.js';
import { DataDirError, openHubDatabase } from './store/hub-database.js';
import { DiskFullError } from './store/disk-space.js';
import { IdentityStore } from './store/identity-store.js';
import { Authenticator } from './auth/authenticator.js';
import { loadOrCreateTls, parseTrustedCas, writeStorageCertificate, type TlsMaterial } from './auth/certificates.js';
import { Registry, type IdentityKey } from './registry/registry.js';
import { Router } from './service-api/router.js';
import { createHttpHandler } from './service-api/http-handler.js';
import { registryRoutes } from './service-api/registry-routes.js';
import { MqttGateway } from './device-gateway/mqtt-gateway.js';
import { MethodTopics } from './device-gateway/method-topics.js';
import { DirectMethods } from './methods/direct-methods.js';
import { methodRoutes } from './service-api/method-routes.js';
import { queryRoutes, twinQuerySource } from './service-api/query-routes.js';
import { scheduledJobRoutes } from './service-api/scheduled-job-routes.js';
import { ScheduledJobs, activeJobLimit } from './jobs/scheduled-jobs.js';
import { JobStore } from './store/job-store.js';
import { configurationRoutes } from './service-api/configuration-routes.js';
import { ConfigurationStore } from './store/configuration-store.js';
import { Configurations } from './configurations/configurations.js';
import { ImportExportJobs } from './import-export/import-export-jobs.js';
import { ImportExportJobStore } from './store/import-export-job-store.js';
import { importExportRoutes } from './service-api/import-export-routes.js';
import { MAX_PACKET_BYTES } from './device-gateway/frame-guard.js';
import { TwinTopics } from './device-gateway/twin-topics.js';
import { TwinStore } from './store/twin-store.js';
import { SessionStore } from './store/session-store.js';
import { Twins } from './twins/twin-service.js';
import { twinIdentity, twinRoutes } from './service-api/twin-routes.js';
import { digitalTwinRoutes } from './service-api/digital-twin-routes.js';
import { Throttle, type Tier } from './throttling.js';
import { EventStore } from './store/event-store.js';
import { EventLog } from './events/event-log.js';
import { startEventHubEndpoint, type EventHubEndpoint } from './events/amqp-endpoint.js';
import { TelemetryTopics } from './device-gateway/telemetry-topics.js';
import { HttpsGateway, isDeviceMessagingRequest } from './device-gateway/https-gateway.js';
import { DEFAULT_SAS_TTL_MS, FileUploads, type FileUploadSettings } from './file-upload/file-uploads.js';
import { checkContainerName, parseStorageAccount } from './storage/storage-account.js';
import { RecordQueue } from './store/record-queue.js';
import { silentLog, type HubLog } from './log.js';
import { DEFAULT_EVENT_HUB_PORT, DEFAULT_PORT, STANDARD_PORTS } from './defaults.js';
import { DataDirLock } from './data-dir-lock.js';
import { Dashboard, isDashboardRequest } from './dashboard/dashboard.js';
import { raiseDescriptorLimit } from './descriptor-limit.js';
import { UnauthenticatedConnections, unauthenticatedBound } from './unauthenticated-connections.js';
import { C2dStore } from './store/c2d-store.js';
import { DeviceQueues } from './cloud-to-device/device-queues.js';
import { MessageLocks } from './cloud-to-device/message-locks.js';
import { C2dTopics } from './device-gateway/c2d-topics.js';
import { c2dRoutes } from './service-api/c2d-routes.js';
import { ServiceAmqpEndpoint } from './service-amqp/service-endpoint.js';
import { AmqpDeviceLinks } from './device-gateway/amqp-device-links.js';
import { Presence } from './registry/presence.js';
import { AmqpTelemetry } from './device-gateway/amqp-telemetry.js';
import { AmqpCloudToDevice } from './device-gateway/amqp-cloud-to-device.js';
import { AmqpMethodLinks } from './device-gateway/amqp-method-links.js';
import { AmqpTwinLinks } from './device-gateway/amqp-twin-links.js';
import { MethodChannels } from './methods/method-channels.js';
import { DEFAULT_CONNECTION_TIMEOUTS, type ConnectionTimeouts } from './connection-timeouts.js';
import type { RoutingSettings } from './routing/routing-settings.js';
import { MessageRouting } from './routing/message-routing.js';
import { routeHubEvents } from './routing/event-sources.js';
import { StorageEndpoint, storageQueueTable, strandedStorageRecords } from './routing/storage-endpoint.js';
import { BlobAccount } from './storage/blob-account.js';

export interface HubOptions {
  /** Where the database and the CA live; ignored with inMemory. */
  dataDir?: string;
  /** Keep everything in memory (the CA too): nothing is written to disk. */
  inMemory?: boolean;
  /** The TLS port for REST, MQTT and MQTT over WebSockets (0: any free port). Default 8883. */
  port?: number;
  /** Listen on IoT Hub's own ports (STANDARD_PORTS) instead of `port`, so that the SDKs need no port setting. */
  standardPorts?: boolean;
  /** The hub's host name, as it appears in connection strings. Default 'localhost'. */
  hostName?: string;
  /** Apply IoT Hub's throttles of one unit of this tier (429 on REST, CONNACK 3 on MQTT); a Throttle brings its own clock. Default: none. */
  throttle?: Tier | Throttle;
  /** The plain-AMQP port of the Event Hub-compatible endpoint (0: any free port). Default 5672. */
  eventHubPort?: number;
  /** Where the hub says what happens (refused connections, failed requests, a full disk). Default: nowhere. */
  log?: HubLog;
  /** PEM CA certificates: a 'certificateAuthority' device's certificate must chain to one of them. */
  trustedCas?: string[];
  /** Consumer groups of the Event Hub-compatible endpoint beside $Default, as one creates them on IoT Hub's built-in endpoint. */
  consumerGroups?: string[];
  /** How long a cloud-to-device message polled over HTTPS stays locked (invisible to polls). Default IoT Hub's 60 s. */
  c2dLockTimeoutMs?: number;
  /** How long a connection may go, at each step, before it has said who it is. Default IoT Hub's bounds (DEFAULT_CONNECTION_TIMEOUTS). */
  connectionTimeouts?: Partial<ConnectionTimeouts>;
  /** File upload: the storage account devices upload to (its blob endpoint https) and the container. Default: none (requests refused). */
  fileUpload?: { connectionString: string; container: string; sasTtlMs?: number };
  /** Message routing (routes, fallback route, enrichments, storage container endpoints). Default: none: every device message goes to the built-in endpoint. */
  routing?: RoutingSettings;
}

/**
 * The Event Hub-compatible name of the built-in events endpoint (its EntityPath). On Azure it is
 * derived from the hub's name; a local hub is always 'localhost', so it gets the toolkit's name.
 */
export const EVENT_HUB_NAME = 'iothub-tut';

// node:http imported as an ES module builds a facade that reads every export, WebSocket's too, and
// that loads undici: ~0.08 CPU-s per hub process. The CommonJS module reads nothing it is not asked.
const { createServer: createHttpServer } = process.getBuiltinModule('node:http');

/** ws, loaded with the first WebSocket upgrade (MQTT or AMQP over WebSockets). */
const ws = loadOnFirstUse<typeof import('ws')>('ws');

export { DataDirError };

const MQTT_CONNECT = 0x10;
/** The first bytes of an AMQP protocol header (the service SDK's AMQPS). */
const AMQP_HEADER = Buffer.from('AMQP');
/** The WebSocket subprotocol of AMQP over WebSockets (the service SDK's AmqpWs); MQTT's is 'mqtt'. */
const AMQP_WEBSOCKET_PROTOCOL = 'amqpwsb10';

// Bounds on what a client may hold open: a whole request (IoT Hub's own requests are small and
// quick), and the steps before it said who it is (connectionTimeouts).
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * How long an idle keep-alive HTTPS connection stays open. Node's default (5 s) equals the idle time
 * after which Node's global agent, which the SDKs' REST clients use, drops a free socket: a request
 * sent on it just as the hub closed it failed with ECONNRESET. Well above it, the client closes first.
 */
const KEEP_ALIVE_TIMEOUT_MS = 60_000;
const MAX_HEADER_BYTES = 16 * 1024;

/** The hub's file upload settings from its options; throws StorageAccountError for an account or container it cannot use. */
function fileUploadSettings(options: NonNullable<HubOptions['fileUpload']>): FileUploadSettings {
  return {
    storage: parseStorageAccount(options.connectionString),
    container: checkContainerName(options.container),
    sasTtlMs: options.sasTtlMs ?? DEFAULT_SAS_TTL_MS,
  };
}

/** The local IoT Hub: composes the store, the domain parts and the two gateways, and owns their lifecycle. */
export class LocalHub {
  readonly hostName: string;
  readonly registry: Registry;
  readonly twins: Twins;
  readonly configurations: Configurations;
  readonly importExport: ImportExportJobs;
  readonly auth: Authenticator;
  readonly mqtt: MqttGateway;
  /** Devices' and modules' links on the TLS port's AMQP connections. */
  readonly amqpDevices: AmqpDeviceLinks;
  /** Which identities are connected, over MQTT, AMQP or both: their connectionState. */
  readonly presence: Presence;
  readonly methods: DirectMethods;
  readonly eventLog: EventLog;
  /** Scheduled jobs (/jobs/v2): methods and twin updates across devices. */
  readonly jobs: ScheduledJobs;
  /** The device-bound (cloud-to-device) queues and their feedback. */
  readonly c2d: DeviceQueues;
  readonly log: HubLog;
  /** The live dashboard under /ui/ on the TLS port. */
  readonly dashboard: Dashboard;
  /** File upload, when the hub has a storage account. */
  readonly fileUploads?: FileUploads;
  /** Message routing in front of the built-in endpoint, when the hub has routes. */
  readonly routing?: MessageRouting;
  private eventHub?: EventHubEndpoint;
  /** The service AMQP endpoint on the TLS port (made by listen, which makes the bound it counts with). */
  private serviceAmqp?: ServiceAmqpEndpoint;
  /** Connections not authenticated yet, on the TLS port and the AMQP port together (made by listen). */
  private unauthenticated?: UnauthenticatedConnections;
  private readonly listeners: TlsServer[] = [];
  private readonly http: HttpServer;
  /** Made with the first WebSocket upgrade. */
  private wss?: WebSocketServer;
  private readonly sockets = new Set<Socket>();
  private portNumbers: number[] = [];
  private dataDirLock?: DataDirLock;

  private constructor(
    private readonly db: Db,
    readonly tls: TlsMaterial,
    hostName: string,
    readonly throttle: Throttle | undefined,
    log: HubLog,
    private readonly trustedCas: X509Certificate[],
    c2dLockTimeoutMs?: number,
    readonly connectionTimeouts: Readonly<ConnectionTimeouts> = DEFAULT_CONNECTION_TIMEOUTS,
    fileUpload?: FileUploadSettings,
    routingSettings?: RoutingSettings,
  ) {
    this.hostName = hostName;
    this.log = log;
    const identities = new IdentityStore(db);
    this.auth = new Authenticator(hostName, identities, trustedCas);
    const persistentSessions = new SessionStore(db);
    const configurationStore = new ConfigurationStore(db);
    this.twins = new Twins(new TwinStore(db), { configurationsOf: (key) => configurationStore.statusesOf(key) });
    // Twins live and die with their identity, in the registry's own transaction; a re-created identity
    // starts with no session and no configuration statuses, as on IoT Hub.
    let beforeTwinRemoved: ((key: IdentityKey) => void) | undefined; // routing's, set below
    this.registry = new Registry(identities, {
      created: (key) => this.twins.create(key),
      deleted: (key) => {
        beforeTwinRemoved?.(key);
        this.twins.remove(key);
        persistentSessions.delete(key.deviceId, key.moduleId);
        configurationStore.deleteTwin(key);
        if (!key.moduleId) this.c2d.deleteDevice(key.deviceId); // modules have no queue
      },
    });
    this.mqtt = new MqttGateway(this.auth, persistentSessions, throttle, log, connectionTimeouts.mqttConnectMs);
    this.mqtt.use(new TwinTopics(this.twins, this.mqtt, log));
    this.amqpDevices = new AmqpDeviceLinks(hostName, this.registry, this.auth);

    // Automatic configurations follow every twin: a new one, a changed one (tags, reported).
    const twinSource = twinQuerySource(this.registry, this.twins, () => this.jobs);
    this.configurations = new Configurations(
      configurationStore,
      this.twins,
      twinSource,
      (key) => ({ ...this.twins.toDocument(key, twinIdentity(this.registry.get(key.deviceId, key.moduleId))) }),
      log,
    );
    this.registry.on('created', (key) => this.configurations.reconcile(key));
    this.twins.on('changed', (key) => this.configurations.reconcile(key));

    // A deleted, disabled or re-keyed identity loses its connections, live or connecting, as soon as the
    // registry's change commits (before it is acknowledged); a disabled device takes its modules along.
    const revoke =
      (why: string, withModules = false) =>
      (key: IdentityKey) => {
        const ended = this.mqtt.revoke(key, { withModules }) + this.amqpDevices.revoke(key, why, { withModules });
        if (ended > 0)
          log.info('auth', `Closed ${ended} connection(s) of ${key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId}: ${why}`);
      };
    this.registry
      .on('deleted', revoke('the identity was deleted'))
      .on('rekeyed', revoke('its keys were changed'))
      .on('disabled', revoke('it was disabled', true));
    this.presence = new Presence(this.registry);
    this.mqtt
      .on('connected', (s) => this.presence.arrived(s.key, 'mqtt', s.modelId))
      .on('disconnected', (s) => this.presence.left(s.key, 'mqtt'));
    this.amqpDevices
      .on('connected', (key, modelId) => this.presence.arrived(key, 'amqp', modelId))
      .on('announced', (key, modelId) => this.presence.announced(key, modelId))
      .on('disconnected', (key) => this.presence.left(key, 'amqp'));

    // Methods go to whichever transport the identity listens on; answers come back from either.
    const methodTopics = new MethodTopics(this.mqtt);
    const amqpMethods = new AmqpMethodLinks(log);
    this.methods = new DirectMethods(this.registry, new MethodChannels(methodTopics, amqpMethods));
    for (const channel of [methodTopics, amqpMethods]) channel.answersTo((from, rid, result) => this.methods.complete(from, rid, result));
    this.mqtt.use(methodTopics);
    this.amqpDevices.use('methods/devicebound', amqpMethods).use('twin', new AmqpTwinLinks(this.twins, log));

    this.eventLog = new EventLog(new EventStore(db), { log });
    // Without routes every device message goes to the built-in endpoint, and routing costs nothing.
    if (routingSettings) {
      const twinOf = (key: IdentityKey) => {
        const state = this.twins.find(key);
        return state && { tags: state.tags, properties: { desired: state.desired, reported: state.reported } };
      };
      const hubName = hostName.split('.')[0]!;
      const storage = new Map(
        routingSettings.storageEndpoints.map((settings) => [
          settings.name,
          new StorageEndpoint(
            settings,
            new RecordQueue(db, storageQueueTable(settings.name)),
            new BlobAccount(settings.storage, tls.ca),
            hubName,
            log,
          ),
        ]),
      );
      this.routing = new MessageRouting(routingSettings, { events: this.eventLog, storage }, twinOf, hubName, log);
      const stranded = strandedStorageRecords(db, [...storage.keys()]);
      if (stranded > 0)
        log.warn(
          'routing',
          `${stranded} message(s) wait in the store for a storage endpoint the routing settings no longer name: name it again to have them written`,
        );
      beforeTwinRemoved = routeHubEvents(this.routing, this.registry, this.twins, this.presence);
    }
    const d2c = this.routing ?? this.eventLog;
    this.mqtt.use(new TelemetryTopics(d2c, this.registry, throttle));
    this.amqpDevices.use('messages/events', new AmqpTelemetry(d2c, this.registry, log, throttle));

    this.importExport = new ImportExportJobs(new ImportExportJobStore(db), this.registry, this.twins, twinIdentity, log);
    this.jobs = new ScheduledJobs(
      new JobStore(db),
      {
        select: (filter) => {
          const deviceIds: string[] = [];
          for (const twin of this.twins.allDocuments('devices', (key) => twinIdentity(this.registry.get(key.deviceId)))) {
            if (filter(twin)) deviceIds.push(twin.deviceId);
          }
          return deviceIds;
        },
        invokeMethod: (deviceId, invocation) => this.methods.invoke({ deviceId }, invocation),
        updateTwin: (deviceId, patch) => void this.twins.patchFromService({ deviceId }, patch),
      },
      log,
      { maxActiveJobs: activeJobLimit(throttle?.tier) },
    );
    this.c2d = new DeviceQueues(new C2dStore(db), this.registry, log);
    this.mqtt.use(new C2dTopics(this.c2d, this.mqtt));
    this.amqpDevices.use('messages/devicebound', new AmqpCloudToDevice(this.c2d));

    const router = new Router().add(
      ...registryRoutes(this.registry, this.presence),
      ...twinRoutes(this.registry, this.twins),
      ...queryRoutes(twinSource),
      ...configurationRoutes(this.configurations, this.registry),
      ...importExportRoutes(this.importExport),
      ...methodRoutes(this.methods),
      ...scheduledJobRoutes(this.jobs),
      ...digitalTwinRoutes(this.registry, this.twins, this.methods),
      ...c2dRoutes(this.c2d),
    );
    const rest = createHttpHandler(router, this.auth, log, throttle);
    this.dashboard = new Dashboard(this, rest);
    if (fileUpload) this.fileUploads = new FileUploads(fileUpload, new RecordQueue(db, 'file_notifications'), tls.ca, log);
    const c2dLocks = new MessageLocks(this.c2d, c2dLockTimeoutMs);
    const devices = new HttpsGateway(this.auth, d2c, this.registry, c2dLocks, log, throttle, this.fileUploads);
    this.http = createHttpServer(
      {
        headersTimeout: connectionTimeouts.headersMs,
        requestTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        maxHeaderSize: MAX_HEADER_BYTES,
        connectionsCheckingInterval: 1000,
      },
      (req, res) =>
        isDashboardRequest(req.url)
          ? this.dashboard.handle(req, res)
          : isDeviceMessagingRequest(req.url)
            ? devices.handle(req, res)
            : rest(req, res),
    );
    // The HTTP server never listens (it is handed sockets from the TLS port), but Node enforces
    // headersTimeout and requestTimeout only from its 'listening' handler on: start that checker.
    this.http.emit('listening');
    this.http.on('upgrade', (req, socket, head) => {
      if (!req.url?.startsWith('/$iothub/websocket')) return socket.destroy();
      const amqp = (req.headers['sec-websocket-protocol'] ?? '')
        .toLowerCase()
        .split(/\s*,\s*/)
        .includes(AMQP_WEBSOCKET_PROTOCOL);
      const { WebSocketServer, createWebSocketStream } = ws();
      this.wss ??= new WebSocketServer({ noServer: true, maxPayload: MAX_PACKET_BYTES });
      this.wss.handleUpgrade(req, socket, head, (webSocket) => {
        if (amqp && this.serviceAmqp) this.serviceAmqp.accept(createWebSocketStream(webSocket), req.socket as Socket);
        else this.mqtt.handle(createWebSocketStream(webSocket), req);
      });
    });
  }

  static async start(options: HubOptions = {}): Promise<LocalHub> {
    const dataDir = options.inMemory ? undefined : options.dataDir;
    if (!options.inMemory && !dataDir) throw new Error('A data dir is required unless the hub runs in memory');
    if (dataDir) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      chmodSync(dataDir, 0o700);
    }
    const log = options.log ?? silentLog();
    // Held from before the database opens until after it closes (stop()); a second hub is refused here.
    const lock = dataDir ? DataDirLock.acquire(dataDir) : undefined;
    let hub: LocalHub;
    try {
      const tlsDir = dataDir && join(dataDir, 'tls');
      // A data dir with a CA has held a hub: its database must be there (checked, not re-created).
      const db = dataDir
        ? openHubDatabase(join(dataDir, 'hub.db'), { held: existsSync(join(tlsDir!, 'ca.pem')), log })
        : openDatabase(':memory:', log);
      try {
        const tls = loadOrCreateTls(tlsDir);
        const throttle = typeof options.throttle === 'string' ? new Throttle(options.throttle) : options.throttle;
        const trustedCas = parseTrustedCas(options.trustedCas ?? []);
        const timeouts = { ...DEFAULT_CONNECTION_TIMEOUTS, ...options.connectionTimeouts };
        const fileUpload = options.fileUpload && fileUploadSettings(options.fileUpload);
        // A certificate the storage emulator can serve, that devices trusting the hub's CA accept (README, "File upload").
        if (fileUpload && tlsDir) writeStorageCertificate(tlsDir, tls);
        hub = new LocalHub(
          db,
          tls,
          options.hostName ?? 'localhost',
          throttle,
          log,
          trustedCas,
          options.c2dLockTimeoutMs,
          timeouts,
          fileUpload,
          options.routing,
        );
      } catch (err) {
        db.close();
        if (err instanceof DiskFullError)
          throw new DataDirError(`the disk holding ${dataDir} is full: free some space, then start the hub again`);
        throw err;
      }
    } catch (err) {
      lock?.release();
      throw err;
    }
    hub.dataDirLock = lock;
    try {
      await hub.mqtt.start();
      await hub.listen(options.standardPorts ? STANDARD_PORTS.map((p) => p.port) : [options.port ?? DEFAULT_PORT]);
      hub.eventHub = await startEventHubEndpoint({
        port: options.eventHubPort ?? DEFAULT_EVENT_HUB_PORT,
        hubName: EVENT_HUB_NAME,
        consumerGroups: ['$Default', ...(options.consumerGroups ?? [])],
        eventLog: hub.eventLog,
        verifyToken: (token, audience) => hub.auth.verifyServiceToken(token, audience, 'ServiceConnect'),
        unauthenticated: hub.unauthenticated,
        authenticationTimeoutMs: hub.connectionTimeouts.amqpAuthenticationMs,
        log: hub.log,
      });
      lock?.describe({ pid: process.pid, port: hub.port, eventHubPort: hub.eventHubPort });
      for (const line of hub.routing?.describe() ?? []) hub.log.info('routing', line);
      hub.routing?.start();
      hub.jobs.resume();
    } catch (err) {
      await hub.stop();
      throw err;
    }
    return hub;
  }

  /** The (first) TLS port: 8883 with standardPorts. */
  get port(): number {
    return this.portNumbers[0] ?? 0;
  }

  /** Every TLS port the hub listens on, each serving all of its TLS protocols. */
  get ports(): readonly number[] {
    return this.portNumbers;
  }

  /** The port of the Event Hub-compatible endpoint. */
  get eventHubPort(): number {
    return this.eventHub?.port ?? 0;
  }

  /**
   * The Event Hub-compatible connection string (the portal's IoT hub > Built-in endpoints), for a
   * policy with ServiceConnect. Plain AMQP, as Microsoft's Event Hubs emulator: hence UseDevelopmentEmulator.
   */
  eventHubConnectionString(policyName = 'service'): string {
    const policy = this.auth.policy(policyName);
    if (!policy) throw new Error(`No policy named ${policyName}`);
    return (
      `Endpoint=sb://localhost:${this.eventHubPort}/;SharedAccessKeyName=${policy.keyName};` +
      `SharedAccessKey=${policy.primaryKey};EntityPath=${EVENT_HUB_NAME};UseDevelopmentEmulator=true`
    );
  }

  /** The connection string of a shared access policy of this hub (iothubowner by default). */
  serviceConnectionString(policyName = 'iothubowner'): string {
    const policy = this.auth.policy(policyName);
    if (!policy) throw new Error(`No policy named ${policyName}`);
    return `HostName=${this.hostName};SharedAccessKeyName=${policy.keyName};SharedAccessKey=${policy.primaryKey}`;
  }

  async stop(): Promise<void> {
    this.dashboard.close();
    this.jobs.close();
    this.methods.close();
    this.c2d.close();
    for (const client of this.wss?.clients ?? []) client.terminate();
    this.http.close(() => undefined); // stops the timeout checker (it never listened, so nothing else to close)
    await this.eventHub?.close();
    await this.serviceAmqp?.close();
    await this.mqtt.close();
    const closed = Promise.all(this.listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    await this.importExport.close();
    await this.routing?.close(); // what waits for a storage endpoint's next batch is written now
    this.registry.flush();
    await this.eventLog.close();
    this.db.close();
    this.dataDirLock?.release();
  }

  /** TLS ports that each serve everything; the first bytes after the handshake tell MQTT, AMQP and HTTP apart. */
  private async listen(ports: number[]): Promise<void> {
    // Anyone may open connections; those that have not authenticated are bounded together, below the
    // descriptor limit, so that they cannot take the descriptors good clients need. A connection
    // authenticates with an accepted MQTT CONNECT (over WebSockets too: its upgrade request holds the
    // socket) or an HTTPS request answered below 400 (each route checks its token first).
    const descriptorLimit = raiseDescriptorLimit(this.log);
    const unauthenticated = new UnauthenticatedConnections(unauthenticatedBound(descriptorLimit), this.log);
    this.unauthenticated = unauthenticated;
    this.serviceAmqp = new ServiceAmqpEndpoint({
      hostName: this.hostName,
      queues: this.c2d,
      verifyToken: (token, audience) => this.auth.verifyCbsToken(token, audience) ?? false,
      unauthenticated,
      log: this.log,
      throttle: this.throttle,
      devices: this.amqpDevices,
      fileUploads: this.fileUploads,
      authenticationTimeoutMs: this.connectionTimeouts.amqpAuthenticationMs,
    });
    this.log.debug(
      'hub',
      `descriptor limit ${descriptorLimit ?? 'unknown'}: at most ${unauthenticated.bound} connections may wait to authenticate`,
    );
    this.mqtt.on('connected', (session) => unauthenticated.authenticated(session.client.req?.socket ?? (session.client.conn as Socket)));
    this.http.on('request', (req, res) =>
      res.once('finish', () => {
        if (res.statusCode < 400) unauthenticated.authenticated(req.socket);
      }),
    );
    const onSocket = (socket: TLSSocket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      socket.setTimeout(this.connectionTimeouts.firstByteMs, () => socket.destroy());
      socket.once('readable', () => {
        const first: Buffer | null = socket.read();
        if (!first) return;
        socket.setTimeout(0); // from here the broker's and the HTTP server's own timeouts apply
        socket.unshift(first);
        if (first[0] === MQTT_CONNECT) this.mqtt.handle(socket);
        else if (first.subarray(0, AMQP_HEADER.length).equals(AMQP_HEADER)) this.serviceAmqp!.accept(socket, socket);
        else this.http.emit('connection', socket);
      });
    };
    // noDelay: with Nagle on, a CONNACK or a method call sent right after the handshake's own small
    // writes waits for the client's delayed ACK (~40 ms per connect in the benchmark).
    // A client certificate is asked for, never required: the MQTT gateway judges it when a CONNECT
    // comes without a password (X.509 identities); everything else ignores it. The request names the
    // hub's CA and the trusted ones, so that a browser on the dashboard offers none of its user's
    // other certificates (the SDKs send theirs whatever the names).
    const tlsOptions = {
      cert: this.tls.cert,
      key: this.tls.key,
      handshakeTimeout: this.connectionTimeouts.handshakeMs,
      noDelay: true,
      requestCert: true,
      rejectUnauthorized: false,
      ca: [this.tls.ca, ...this.trustedCas.map((ca) => ca.toString())],
    };
    const serve = (server: TlsServer): void => {
      this.listeners.push(server);
      server.on('connection', (socket: Socket) => {
        // The TCP socket beneath, from its accept: stop() ends those still in their handshake too.
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        unauthenticated.admit(socket, 'TLS');
      });
      // A handshake that fails or times out only emits this: Node leaves the socket open.
      server.on('tlsClientError', (error: NodeJS.ErrnoException, socket) => {
        if (error.code !== 'ECONNRESET')
          this.log.info('hub', `closed the TLS connection from ${socket.remoteAddress}:${socket.remotePort}: ${error.message}`);
        socket.destroy();
      });
      // A failed accept (the descriptor limit reached) leaves the listener serving.
      server.on('error', (error) =>
        this.log.error(
          'hub',
          `could not accept a connection on port ${(server.address() as { port?: number } | null)?.port}: ${error.message}`,
        ),
      );
    };
    for (const port of ports) {
      const primary = createTlsServer(tlsOptions, onSocket);
      await listenOn(primary, port, '127.0.0.1');
      serve(primary);
      const bound = (primary.address() as { port: number }).port;
      this.portNumbers.push(bound);
      // Clients resolve localhost to ::1 first on some systems: serve the same port there when IPv6 exists.
      const v6 = createTlsServer(tlsOptions, onSocket);
      await listenOn(v6, bound, '::1').then(
        () => serve(v6),
        () => undefined,
      );
    }
  }
}

function listenOn(server: TlsServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
