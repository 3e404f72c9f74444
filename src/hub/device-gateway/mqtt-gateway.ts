import { EventEmitter } from 'node:events';
import { finished, type Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import mqttPacket from 'mqtt-packet';
import type { Authenticator, DeviceAuthFailure } from '../auth/authenticator.js';
import { presentedCertificates } from '../auth/client-certificate.js';
import type { IdentityKey } from '../registry/registry.js';
import { HubError } from '../errors.js';
import { parseSasToken } from '../auth/sas-token.js';
import { callAt } from '../auth/token-expiry.js';
import type { Throttle } from '../throttling.js';
import type { SessionStore } from '../store/session-store.js';
import { guardFrames } from './frame-guard.js';
import { TurnBudget } from './turn-budget.js';
import { silentLog, type HubLog } from '../log.js';
import { DEFAULT_CONNECTION_TIMEOUTS } from '../connection-timeouts.js';

/** A connected device or module. */
export interface DeviceSession {
  key: IdentityKey;
  client: Client;
  /** Topic filters the client subscribed to. */
  subscriptions: Set<string>;
  /** The IoT Plug and Play model id its CONNECT announced (`model-id=` in the user name), if any. */
  modelId?: string;
  /** What it authenticated with: a SAS token or a client certificate. */
  authMethod: 'sas' | 'x509';
}

/**
 * One IoT Hub feature on the MQTT side: it claims the topics it serves and handles what a
 * device publishes there. Throwing a HubError refuses the publish (the connection is closed,
 * as IoT Hub does for a publish it cannot accept).
 */
export interface TopicHandler {
  /** Topic prefixes a device may publish to, with {deviceTopic} standing for devices/{id}[/modules/{id}]. */
  publishes(topic: string, session: DeviceSession): boolean;
  /** Topic filters a device may subscribe to. */
  subscribes(filter: string, session: DeviceSession): boolean;
  /** Settles once the publish is done with (for QoS 1: before the PUBACK); a rejection refuses it. */
  handle(session: DeviceSession, packet: PublishPacket): void | Promise<unknown>;
}

// mqtt-packet (aedes's and ours) otherwise fills a cache of 65,536 two-byte Buffers, one per packet id,
// at its first write: a tenth of a second of CPU, and memory never freed, for no gain on the wire.
mqttPacket.writeToStream.cacheNumbers = false;

/** Marks the hub's own publishes (aedes keeps brokerId off the wire); see authorizeForward. */
const DIRECT = 'iothub-tut-hub';

/**
 * What the hub holds for a client that does not read: bytes written to its connection and not yet
 * taken by the kernel. 16 of IoT Hub's largest messages (256 KB): a client that reads keeps this
 * near zero whatever the load, while one that stops is cut after a few MB instead of holding the
 * hub's memory until the drain timeout (a minute), at whatever rate the service sends.
 */
export const MAX_OUTGOING_BYTES = 4 * 1024 * 1024;

/**
 * Each connection's share of an event-loop turn for its publishes (see TurnBudget): a D2C publish
 * costs microseconds, so a batch of them runs at once; a twin update costs an fsync, so a flood of
 * them yields between updates.
 */
const TURN_BUDGET_MS = 2;

type ConnectRefusal = DeviceAuthFailure | 'badUsername' | 'throttled';

// IoT Hub's CONNACK answers for a refused connect, and why, for the hub's log.
const CONNACK: Record<ConnectRefusal, { code: AuthenticateError['returnCode']; why: string }> = {
  throttled: { code: 3, why: "the hub's connect throttle is exhausted" }, // server unavailable: IoT Hub's answer
  malformed: { code: 4, why: 'the password is not a SAS token' },
  badUsername: { code: 4, why: 'the client id or the username is not {deviceId}[/{moduleId}] and {hostName}/{clientId}/?api-version=...' },
  expired: { code: 5, why: 'the SAS token has expired' },
  wrongAudience: { code: 5, why: "the SAS token's audience (sr) is not this identity" },
  badSignature: { code: 5, why: "the SAS token's signature does not match the identity's keys" },
  unknownIdentity: { code: 5, why: 'no such device or module in the registry' },
  disabled: { code: 5, why: 'the device is disabled' },
  notCertificateIdentity: { code: 5, why: 'a client certificate without a password, for an identity that does not use X.509' },
  thumbprintMismatch: { code: 5, why: "the client certificate's thumbprint is neither of the identity's" },
  untrustedCertificate: { code: 5, why: 'the client certificate does not chain to a trusted CA, or is out of date' },
  wrongCommonName: { code: 5, why: "the client certificate's common name is not the identity's id" },
};

/** The SUBACK return code of a refused subscription. */
const SUBACK_FAILURE = 128;

/**
 * The device side of the hub: aedes with IoT Hub semantics in its hooks. Authentication is the
 * identity's SAS token; a client may only publish and subscribe where a TopicHandler allows it,
 * and nothing a client publishes is routed to other clients: the hub answers each one directly.
 * 'connected' and 'disconnected' bracket an identity's current session (a reconnect that replaces a
 * session emits no 'disconnected' for the old one); 'closed' ends every session, replaced or not.
 */
export class MqttGateway extends EventEmitter<{
  connected: [DeviceSession];
  disconnected: [DeviceSession];
  closed: [DeviceSession];
  subscribed: [DeviceSession];
}> {
  readonly broker: Aedes;
  /** Each connection's share of the event loop for its publishes. */
  private readonly turns = new TurnBudget<Client>(TURN_BUDGET_MS);
  private readonly sessions = new Map<string, DeviceSession>();
  private readonly byClient = new WeakMap<Client, DeviceSession>();
  private readonly handlers: TopicHandler[] = [];
  /**
   * Every connection past authentication whose socket is still open, live or still connecting, by device
   * id (a device's modules with it): what a revocation must reach. A connect's CONNACK and its session's
   * going live come some turns of the event loop after its token was checked.
   */
  private readonly authenticated = new Map<string, Set<DeviceSession>>();
  /** The hub's own QoS 1 publishes awaiting their PUBACK, per client, by packet id. */
  private readonly awaitingAck = new WeakMap<Client, Map<number, () => void>>();
  private nextPacketId = 0;

  constructor(
    private readonly auth: Authenticator,
    private readonly persistentSessions: SessionStore,
    private readonly throttle?: Throttle,
    private readonly log: HubLog = silentLog(),
    connectTimeoutMs = DEFAULT_CONNECTION_TIMEOUTS.mqttConnectMs,
  ) {
    super();
    this.broker = new Aedes({
      // A module's client id is deviceId/moduleId; ids may be 128 characters each.
      maxClientsIdLength: 257,
      // A connection that does not complete its CONNECT soon (a slow or silent client) is closed.
      connectTimeout: connectTimeoutMs,
      authenticate: (client, username, password, done) => this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => done(null, this.authorizeSubscribe(client, sub) ? sub : null),
      // Nothing is forwarded between devices: every topic a device may subscribe to is served by the
      // hub directly, and only what sendTo marks as its own goes out.
      authorizeForward: (_client, packet) => (packet.brokerId === DIRECT ? packet : null),
    });
    this.broker.on('subscribe', (subs, client) => {
      const session = this.liveOrConnecting(client);
      if (!session) return;
      for (const sub of subs) session.subscriptions.add(sub.topic);
      this.keepSession(session);
      this.emit('subscribed', session);
    });
    this.broker.on('unsubscribe', (topics, client) => {
      const session = this.liveOrConnecting(client);
      if (!session) return;
      for (const topic of topics) session.subscriptions.delete(topic);
      this.keepSession(session);
    });
    this.broker.on('clientReady', (client) => {
      const session = this.liveOrConnecting(client);
      if (!session) return;
      // A persistent session resumes with its subscriptions, also after a hub restart; a clean one starts empty.
      const { deviceId, moduleId } = session.key;
      if (client.clean) this.persistentSessions.delete(deviceId, moduleId);
      else for (const filter of this.persistentSessions.filters(deviceId, moduleId)) session.subscriptions.add(filter);
      this.sessions.set(sessionId(session.key), session);
      if (this.log.enabled('debug'))
        this.log.debug('mqtt', `${client.id} connected: CONNACK 0 (${client.clean ? 'clean' : 'persistent'} session)`);
      this.emit('connected', session);
    });
    // aedes registers a connect that was closed half-way (revoked between its token check and its
    // registration) all the same, and would keep it in its client list: take it out again.
    this.broker.on('client', (client) => {
      if (client.closed && !client.connecting) (this.broker as unknown as BrokerRegistry).unregisterClient(client);
    });
    this.broker.on('clientDisconnect', (client) => this.dropSession(client));
    // A client's socket error concerns that client only; a publish the hub refused says why.
    this.broker.on('clientError', (client, err) => {
      if (err instanceof RefusedPublish || err instanceof HubError)
        this.log.info('mqtt', `closed the connection of ${client.id}: ${err.message}`);
    });
    this.broker.on('connectionError', () => {});
  }

  private keepSession(session: DeviceSession): void {
    if (!session.client.clean) this.persistentSessions.save(session.key.deviceId, session.key.moduleId, session.subscriptions);
  }

  /** aedes needs its persistence ready before it takes connections. */
  start(): Promise<void> {
    return this.broker.listen();
  }

  use(handler: TopicHandler): this {
    this.handlers.push(handler);
    return this;
  }

  /** Hands a connection (TLS socket or WebSocket stream) to the broker. */
  handle(stream: Duplex, req?: IncomingMessage): void {
    const client = this.broker.handle(stream, req);
    grantAtMostQos1(client);
    onPuback(client, (packetId) => {
      const acknowledged = this.awaitingAck.get(client)?.get(packetId);
      this.awaitingAck.get(client)?.delete(packetId);
      acknowledged?.();
    });
    guardFrames(stream);
  }

  session(key: IdentityKey): DeviceSession | undefined {
    return this.sessions.get(sessionId(key));
  }

  /** True when the identity is connected and subscribed to a filter starting with `prefix`. */
  isSubscribed(key: IdentityKey, prefix: string): boolean {
    const session = this.session(key);
    return !!session && [...session.subscriptions].some((f) => f.startsWith(prefix));
  }

  /** Publishes to one connected identity only (never through the broker's routing). */
  sendTo(key: IdentityKey, topic: string, payload: Buffer | string): Promise<void> {
    const session = this.session(key);
    if (!session) return Promise.reject(new Error('not connected'));
    const unsent = session.client.conn.writableLength;
    if (unsent > MAX_OUTGOING_BYTES) {
      this.log.info(
        'mqtt',
        `closed the connection of ${session.client.id}: it does not read what the hub sends (${unsent} bytes unsent, the bound is ${MAX_OUTGOING_BYTES})`,
      );
      session.client.close();
      return Promise.reject(new Error('not connected'));
    }
    const packet = { cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false, brokerId: DIRECT } as PublishPacket;
    return new Promise((resolve, reject) => session.client.publish(packet, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * Publishes at QoS 1 to one connection (never through the broker's routing, nor aedes's queue of
   * outgoing messages: the caller keeps what must survive); `acknowledged` runs on the client's PUBACK.
   * False when the connection is gone or does not read (then it is closed, as in sendTo).
   */
  sendAtLeastOnce(session: DeviceSession, topic: string, payload: Buffer, dup: boolean, acknowledged: () => void): boolean {
    const { client } = session;
    if (client.closed || !client.connected) return false;
    const unsent = client.conn.writableLength;
    if (unsent > MAX_OUTGOING_BYTES) {
      this.log.info(
        'mqtt',
        `closed the connection of ${client.id}: it does not read what the hub sends (${unsent} bytes unsent, the bound is ${MAX_OUTGOING_BYTES})`,
      );
      client.close();
      return false;
    }
    let waiting = this.awaitingAck.get(client);
    if (!waiting) this.awaitingAck.set(client, (waiting = new Map()));
    // Packet ids 1..65535; the hub sends no other QoS 1 publish, so they are the client's alone to answer.
    do this.nextPacketId = (this.nextPacketId % 65535) + 1;
    while (waiting.has(this.nextPacketId));
    waiting.set(this.nextPacketId, acknowledged);
    mqttPacket.writeToStream({ cmd: 'publish', topic, payload, qos: 1, messageId: this.nextPacketId, dup, retain: false }, client.conn);
    return true;
  }

  /**
   * Ends an identity's connections (with withModules, those of a device's modules too) when it is
   * deleted, disabled or re-keyed: the live ones and those still connecting, at once, before the
   * registry change is acknowledged. Their sockets are destroyed here, so no CONNACK or PUBACK can
   * follow, and no later step of a connect under way brings a closed client's session back.
   * Returns how many connections it ended.
   */
  revoke(key: IdentityKey, options: { withModules?: boolean } = {}): number {
    let ended = 0;
    for (const session of [...(this.authenticated.get(key.deviceId) ?? [])]) {
      const sameIdentity = (session.key.moduleId ?? '') === (key.moduleId ?? '');
      if (!sameIdentity && !(options.withModules && !key.moduleId)) continue;
      this.dropSession(session.client);
      session.client.close();
      session.client.conn.destroy();
      ended++;
    }
    return ended;
  }

  connectedCount(): number {
    return this.sessions.size;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.broker.close(() => resolve()));
  }

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (e: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    const refuse = (reason: ConnectRefusal) => {
      const { code, why } = CONNACK[reason];
      this.log.info('mqtt', `refused the connection of ${client.id}: CONNACK ${code}, ${why}`);
      const error = new Error(`Connection refused: ${reason}`) as AuthenticateError;
      error.returnCode = code;
      done(error, false);
    };
    if (this.throttle && !this.throttle.allow('connect')) return refuse('throttled');
    const [deviceId, moduleId, ...rest] = client.id.split('/');
    if (!deviceId || rest.length > 0) return refuse('badUsername');
    // The username is {hostName}/{clientId}/?api-version=... ; the host must be this hub.
    const expectedPrefix = `${this.auth.hostName}/${client.id}/`.toLowerCase();
    if (!username || !username.toLowerCase().startsWith(expectedPrefix)) return refuse('badUsername');
    // No password: the client certificate of the TLS connection (beneath the WebSocket, if any) is the credential.
    const chain = password ? undefined : presentedCertificates(client.req?.socket ?? client.conn);
    const failure = password
      ? this.auth.authenticateDevice(password.toString('utf8'), deviceId, moduleId)
      : chain
        ? this.auth.authenticateCertificate(chain, deviceId, moduleId)
        : 'malformed';
    if (failure) return refuse(failure);
    const modelId = announcedModelId(username);
    const session: DeviceSession = {
      key: { deviceId, moduleId },
      client,
      subscriptions: new Set(),
      authMethod: chain ? 'x509' : 'sas',
      ...(modelId ? { modelId } : {}),
    };
    this.byClient.set(client, session);
    // A token's connection ends when the token expires; a certificate's when the certificate does.
    this.track(session, chain ? new Date(chain[0].validTo).getTime() / 1000 : parseSasToken(password!.toString('utf8'))!.expiry);
    done(null, true);
  }

  /**
   * Keeps an authenticated connection where a revocation finds it until its socket closes, and closes
   * it when its SAS token expires, as IoT Hub does (the SDKs reconnect with a fresh token before that).
   */
  private track(session: DeviceSession, expirySeconds: number): void {
    const { deviceId } = session.key;
    let sessions = this.authenticated.get(deviceId);
    if (!sessions) this.authenticated.set(deviceId, (sessions = new Set()));
    sessions.add(session);
    const cancelExpiry = callAt(expirySeconds * 1000, () => session.client.close());
    // finished() also answers for a socket that closed before its CONNECT was checked.
    finished(session.client.conn, () => {
      cancelExpiry();
      sessions.delete(session);
      if (sessions.size === 0 && this.authenticated.get(deviceId) === sessions) this.authenticated.delete(deviceId);
    });
  }

  /** The client's session, unless its connection is gone (closed, e.g. revoked, while its connect was under way). */
  private liveOrConnecting(client: Client | null): DeviceSession | undefined {
    return client && !client.closed ? this.byClient.get(client) : undefined;
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const session = this.liveOrConnecting(client);
    if (!session) return done(new Error('not authenticated'));
    // "IoT Hub doesn't support QoS 2 messages. If a device app publishes a message with QoS 2, IoT Hub
    // closes the network connection." Refused before aedes stores anything for its PUBREL.
    if (packet.qos === 2) return done(new RefusedPublish('a QoS 2 publish (IoT Hub supports QoS 0 and 1)'));
    const handler = this.handlers.find((h) => h.publishes(packet.topic, session));
    if (!handler) return done(new RefusedPublish(`a publish to '${packet.topic}', where it may not publish`));
    this.turns.run(session.client, () => {
      let handled: Promise<unknown>;
      try {
        handled = Promise.resolve(handler.handle(session, packet));
      } catch (err) {
        handled = Promise.reject(err);
      }
      handled.then(
        () => {
          // IoT Hub keeps no retained message (the handler saw the flag): neither does the broker.
          packet.retain = false;
          done(null);
        },
        (err) => done(err instanceof HubError ? err : new Error(String(err))),
      );
    });
  }

  /** True when a handler serves the filter for this client; the outcome is logged with its SUBACK code. */
  private authorizeSubscribe(client: Client, { topic: filter, qos }: Subscription): boolean {
    const session = this.liveOrConnecting(client);
    if (!session) return false; // its connection is closing: nothing is sent back
    if (this.handlers.some((h) => h.subscribes(filter, session))) {
      // The granted QoS, already lowered to at most 1 (grantAtMostQos1).
      if (this.log.enabled('debug')) this.log.debug('mqtt', `${client.id} subscribed to '${filter}': SUBACK ${qos}`);
      return true;
    }
    this.log.info(
      'mqtt',
      `refused the subscription of ${client.id} to '${filter}': SUBACK ${SUBACK_FAILURE}, it is not a topic IoT Hub serves to this identity`,
    );
    return false;
  }

  private dropSession(client: Client): void {
    const session = this.byClient.get(client);
    this.turns.drop(client); // what a closed connection left waiting is not handled
    if (!session) return;
    this.byClient.delete(client); // once: a revoked connection's close comes back here
    const id = sessionId(session.key);
    // A reconnect under the same id may already have replaced this session.
    if (this.sessions.get(id) === session) {
      this.sessions.delete(id);
      this.emit('disconnected', session);
    }
    this.emit('closed', session);
  }
}

/** The part of aedes's client bookkeeping its types leave out. */
interface BrokerRegistry {
  unregisterClient(client: Client): void;
}

/** A publish IoT Hub answers by closing the connection, with the reason the hub logs. */
class RefusedPublish extends Error {}

/**
 * "When a device client subscribes to a topic with QoS 2, IoT Hub grants maximum QoS level 1 in the
 * SUBACK packet." aedes grants what was asked (authorizeSubscribe cannot change the SUBACK), so the
 * requested QoS is lowered as each SUBSCRIBE is parsed, before aedes sees it.
 */
function grantAtMostQos1(client: Client): void {
  const parser = (client as unknown as { _parser?: EventEmitter })._parser;
  parser?.prependListener('packet', (packet: { cmd: string; subscriptions?: Array<{ qos: number }> }) => {
    if (packet.cmd !== 'subscribe') return;
    for (const sub of packet.subscriptions ?? []) sub.qos = Math.min(sub.qos, 1);
  });
}

/**
 * The model id in a CONNECT's user name, `{hostName}/{clientId}/?api-version=...&model-id=dtmi:...;1&...`:
 * how an IoT Plug and Play device announces its model. The SDKs write it unencoded (a DTMI has no '&').
 */
function announcedModelId(username: string): string | undefined {
  const query = username.indexOf('?');
  return query < 0 ? undefined : new URLSearchParams(username.slice(query + 1)).get('model-id') || undefined;
}

/** Calls `acknowledged` with the packet id of each PUBACK the client sends, as it is parsed. */
function onPuback(client: Client, acknowledged: (packetId: number) => void): void {
  const parser = (client as unknown as { _parser?: EventEmitter })._parser;
  parser?.prependListener('packet', (packet: { cmd: string; messageId?: number }) => {
    if (packet.cmd === 'puback' && packet.messageId !== undefined) acknowledged(packet.messageId);
  });
}

function sessionId(key: IdentityKey): string {
  return key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId;
}

/** devices/{deviceId} or devices/{deviceId}/modules/{moduleId}: where a device's own topics start. */
export function deviceTopicRoot(key: IdentityKey): string {
  return key.moduleId ? `devices/${key.deviceId}/modules/${key.moduleId}` : `devices/${key.deviceId}`;
}
