import { EventEmitter } from 'node:events';
import type { Receiver, Sender } from 'rhea';
import { linkAddress, type AmqpConnections, type AmqpConnectionState } from '../amqp/amqp-connections.js';
import type { IdentityKey, Registry } from '../registry/registry.js';
import type { Authenticator } from '../auth/authenticator.js';
import { presentedCertificates } from '../auth/client-certificate.js';

// Devices and modules over AMQP (azure-iot-device-amqp's Amqp and AmqpWs), on the same connections as
// the service links: as on IoT Hub, what a connection may attach is decided by the tokens it put on
// $cbs, never by the port. An attach to `[amqps://{host}]/devices/{id}[/modules/{mid}]/{suffix}` comes
// here; the identity must be covered by a claim with DeviceConnect (the identity's own SAS token for
// exactly `{host}/devices/{id}[/modules/{mid}]`, or a policy's token with DeviceConnect) and be enabled,
// else the link is detached with amqp:unauthorized-access and a log line saying why. Several identities
// may share a connection, each with its own token. An X.509 device puts no token: the TLS client
// certificate, judged as MQTT's, gives its connection a claim on the identity until the certificate expires
// (its first link must come within the 20 s a connection has to authenticate).
//
// The links are served by a table of handlers keyed by the suffix ('messages/events', 'twin', ...).
// A handler gets, for each link it is given, a DeviceLink: the identity's key, the link itself (already
// authorised, its source or target echoed), the attach address, and the connection's state
// (AmqpConnectionState: its claims, peer and stream). `fromDevice` takes the links the device sends on
// (the hub's receiving end), `toDevice` those it receives on; a direction a handler lacks is refused
// with amqp:not-allowed. `gone` is called once for every link the handler was given that ends, however
// it ends: detached by the device, its token expired, its identity revoked, its connection closed.
// Plug a handler in with `use(suffix, handler)`.
//
// An identity is `connected` from its first open link of its own to its last one's end (`disconnected`),
// across its connections: IoT Hub counts an AMQP device as connected once it has opened a link, not
// at its $cbs token. A model id (IoT Plug and Play) comes as the attach property `com.microsoft:model-id`
// (the C# and Java device SDKs put it on their links; azure-iot-device-amqp sends none).

export interface DeviceLink<L extends Sender | Receiver> {
  key: IdentityKey;
  link: L;
  /** The address as the device attached it. */
  address: string;
  state: AmqpConnectionState;
  /** How the identity authenticated: a SAS token on $cbs, or its TLS client certificate. */
  authMethod: 'sas' | 'x509';
  /** The IoT Plug and Play model id the identity announced on this connection (this link's or an earlier one's). */
  modelId?: string;
}

export interface DeviceLinkHandler {
  /** A link the device sends on (it attached as a sender; the hub holds the receiving end). */
  fromDevice?(device: DeviceLink<Receiver>): void;
  /** A link the device receives on (it attached as a receiver; the hub holds the sending end). */
  toDevice?(device: DeviceLink<Sender>): void;
  /** A link this handler was given has ended. */
  gone?(link: Sender | Receiver): void;
  /** Modules have no such link (e.g. a cloud-to-device queue): theirs is refused with amqp:not-found. */
  devicesOnly?: boolean;
}

/** `[amqps://host]/devices/{id}[/modules/{mid}]/{suffix}`, as the device SDKs write their link addresses. */
const DEVICE_ADDRESS = /^(?:[a-z][a-z0-9+.-]*:\/\/[^/]*)?\/devices\/([^/]+)(?:\/modules\/([^/]+))?\/(.+?)\/?$/i;

/** The attach property in which a device announces its IoT Plug and Play model id. */
const MODEL_ID_PROPERTY = 'com.microsoft:model-id';

interface DeviceLinksEvents {
  /** The identity's first link is open (with the model id it announced on it, if any). */
  connected: [IdentityKey, string | undefined];
  /** A later link of a connected identity announced a model id. */
  announced: [IdentityKey, string];
  /** The identity's last link has ended. */
  disconnected: [IdentityKey];
}

export class AmqpDeviceLinks extends EventEmitter<DeviceLinksEvents> {
  private connections?: AmqpConnections;
  private readonly handlers = new Map<string, DeviceLinkHandler>();
  /** Which handler holds each open device link, to tell it when the link ends, and whose link it is. */
  private readonly holders = new Map<Sender | Receiver, { handler: DeviceLinkHandler; path: string }>();
  /** Per identity (its path) with links open, how many. */
  private readonly openLinks = new Map<string, { key: IdentityKey; links: number }>();
  /** Per connection, the model ids its identities (their paths) announced on their links. */
  private readonly models = new WeakMap<AmqpConnectionState, Map<string, string>>();
  /** Per connection, the identities (their paths) it holds by a client certificate. */
  private readonly certified = new WeakMap<AmqpConnectionState, Set<string>>();

  constructor(
    private readonly hostName: string,
    private readonly registry: Registry,
    private readonly auth: Authenticator,
  ) {
    super();
  }

  /** Serves the links with addresses ending in `suffix` (lower case, e.g. 'messages/events'). */
  use(suffix: string, handler: DeviceLinkHandler): this {
    this.handlers.set(suffix.toLowerCase(), handler);
    return this;
  }

  /** The AMQP connections whose device links come here (the hub's TLS port's). */
  serve(connections: AmqpConnections): void {
    this.connections = connections;
  }

  /** Whether `link` is a device's or module's (by its address), to be opened here. */
  owns(link: Sender | Receiver): boolean {
    return DEVICE_ADDRESS.test(linkAddress(link));
  }

  /** Opens a device link: authorised for its identity, then handed to its suffix's handler. */
  open(link: Sender | Receiver, state: AmqpConnectionState): void {
    const connections = this.connections!;
    const address = linkAddress(link);
    const [, deviceId, moduleId, suffix] = DEVICE_ADDRESS.exec(address)!;
    const key: IdentityKey = moduleId ? { deviceId: deviceId!, moduleId } : { deviceId: deviceId! };
    const path = identityPath(this.hostName, key);
    if (!state.claims.covers(path, 'DeviceConnect')) {
      const refusal = this.certificateRefusal(state, key, path);
      if (refusal) return connections.refuse(link, 'amqp:unauthorized-access', `Unauthorized: ${refusal}.`);
    }
    const handler = this.handlers.get(suffix!.toLowerCase());
    const attach = link.is_sender() ? handler?.toDevice : handler?.fromDevice;
    if (!handler) {
      return connections.refuse(link, 'amqp:not-found', `'${address}' is not an endpoint of this hub.`);
    }
    if (moduleId && handler.devicesOnly) {
      return connections.refuse(link, 'amqp:not-found', `'${address}' is not an endpoint of this hub: modules have no ${suffix}.`);
    }
    if (!attach) {
      return connections.refuse(
        link,
        'amqp:not-allowed',
        `'${address}' does not ${link.is_sender() ? 'send to' : 'accept messages from'} ${moduleId ? 'modules' : 'devices'}.`,
      );
    }
    const refusal = this.disabled(key);
    if (refusal) return connections.refuse(link, 'amqp:unauthorized-access', `Unauthorized: ${refusal}.`);
    if (link.is_sender()) link.set_source({ address });
    else link.set_target({ address });
    connections.authorise(state, link, path, 'DeviceConnect');
    this.holders.set(link, { handler, path });
    const open = this.openLinks.get(path) ?? { key, links: 0 };
    this.openLinks.set(path, { key, links: open.links + 1 });
    const announced = this.announcedModel(link, state, path);
    if (open.links === 0) this.emit('connected', key, announced);
    else if (announced) this.emit('announced', key, announced);
    const authMethod = this.certified.get(state)?.has(path) ? 'x509' : 'sas';
    const modelId = this.models.get(state)?.get(path);
    (attach as (device: DeviceLink<Sender | Receiver>) => void).call(handler, {
      key,
      link,
      address,
      state,
      authMethod,
      ...(modelId ? { modelId } : {}),
    });
  }

  /** A link that was authorised has ended: its handler hears of it. */
  gone(link: Sender | Receiver): void {
    const holder = this.holders.get(link);
    if (!holder) return;
    this.holders.delete(link);
    holder.handler.gone?.(link);
    const open = this.openLinks.get(holder.path)!;
    if (open.links > 1) return void this.openLinks.set(holder.path, { ...open, links: open.links - 1 });
    this.openLinks.delete(holder.path);
    this.emit('disconnected', open.key);
  }

  /**
   * Ends what an identity holds over AMQP (it was deleted, disabled or re-keyed): its links are
   * detached, its own tokens forgotten, and connections left with nothing closed. With `withModules`,
   * a device's modules' links go too. Returns how many connections lost links.
   */
  revoke(key: IdentityKey, why: string, options: { withModules?: boolean } = {}): number {
    if (!this.connections) return 0;
    const withModules = !key.moduleId && options.withModules === true;
    return this.connections.revoke(identityPath(this.hostName, key), withModules, {
      condition: 'amqp:unauthorized-access',
      description: `The identity's access was revoked: ${why}.`,
    });
  }

  /** The model id this link's attach announces (kept for the identity's later links on the connection), or undefined. */
  private announcedModel(link: Sender | Receiver, state: AmqpConnectionState, path: string): string | undefined {
    const announced: unknown = link.properties?.[MODEL_ID_PROPERTY];
    if (typeof announced !== 'string' || announced === '') return undefined;
    const models = this.models.get(state) ?? new Map<string, string>();
    this.models.set(state, models.set(path, announced));
    return announced;
  }

  /**
   * Admits an identity by the connection's TLS client certificate (an X.509 device): its validity
   * becomes the connection's claim on the identity, and the connection is authenticated. Else says why not.
   */
  private certificateRefusal(state: AmqpConnectionState, key: IdentityKey, path: string): string | undefined {
    const chain = presentedCertificates(state.peer);
    const failure = chain && this.auth.authenticateCertificate(chain, key.deviceId, key.moduleId);
    if (!chain || failure) {
      const certificate = chain ? ` (the client certificate is refused: ${failure})` : '';
      return `put a token for '${path}' on $cbs first (the identity's own, or a policy's with DeviceConnect)${certificate}`;
    }
    state.claims.add(path, Date.parse(chain[0]!.validTo), { rights: ['DeviceConnect'], exact: true });
    const certified = this.certified.get(state) ?? new Set<string>();
    this.certified.set(state, certified.add(path));
    this.connections!.authenticate(state);
    return undefined;
  }

  /** Why an identity may not open links (unknown, or it or its device disabled), or undefined. */
  private disabled(key: IdentityKey): string | undefined {
    const identity = this.registry.find(key.deviceId, key.moduleId);
    const name = key.moduleId ? `module '${key.deviceId}/${key.moduleId}'` : `device '${key.deviceId}'`;
    if (!identity) return `${name} is not registered`;
    const device = key.moduleId ? this.registry.find(key.deviceId) : identity;
    if (identity.status !== 'enabled' || device?.status !== 'enabled') return `${name} is disabled`;
    return undefined;
  }
}

/** The resource an identity's token is for: `{host}/devices/{id}[/modules/{mid}]`. */
function identityPath(hostName: string, key: IdentityKey): string {
  return `${hostName}/devices/${key.deviceId}${key.moduleId ? `/modules/${key.moduleId}` : ''}`;
}
