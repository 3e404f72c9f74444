import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from '../registry/registry.js';
import type { Twins } from '../twins/twin-service.js';
import type { Presence } from '../registry/presence.js';
import type { DirectMethods } from '../methods/direct-methods.js';
import type { EventLog } from '../events/event-log.js';
import type { DeviceQueues } from '../cloud-to-device/device-queues.js';
import { HubError, hubErrors } from '../errors.js';
import type { Throttle } from '../throttling.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { HubLog, LogLine } from '../log.js';
import { grants } from '../auth/policies.js';
import { createSasToken } from '../auth/sas-token.js';
import { DashboardSessions, type DashboardSession } from './sessions.js';
import { cookie, refusal, sessionCookie, setSecurityHeaders } from './request-checks.js';
import { identityConnectionString, identityViews, type HubOverview } from './read-model.js';
import { TelemetryFeed } from './telemetry-feed.js';
import { LiveStream } from './live-stream.js';
import { uiFile } from './static-files.js';

/** The parts of the hub the dashboard shows and drives. */
export interface DashboardHub {
  readonly hostName: string;
  readonly port: number;
  readonly eventHubPort: number;
  readonly registry: Registry;
  readonly twins: Twins;
  readonly presence: Presence;
  readonly methods: DirectMethods;
  readonly eventLog: EventLog;
  readonly c2d: DeviceQueues;
  readonly throttle: Throttle | undefined;
  readonly auth: Authenticator;
  readonly log: HubLog;
}

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** True for the requests the dashboard serves (everything under /ui); the rest is the REST API's. */
export function isDashboardRequest(url: string | undefined): boolean {
  return url !== undefined && /^\/ui(?:[/?]|$)/.test(url);
}

/** A signed-in page has the rights of this policy; the browser never holds its key. */
const SESSION_POLICY = 'iothubowner';
/** A workshop day. */
const SESSION_LIFETIME_MS = 12 * 60 * 60 * 1000;
/** How often the open pages get the hub view, and the device list when something changed that no event announces. */
const TICK_MS = 2000;
/** Device list updates triggered by events are sent at most this often. */
const DEVICES_DEBOUNCE_MS = 100;
const TELEMETRY_BACKLOG = 200;
const MAX_SMALL_BODY_BYTES = 4096;
const REST_PREFIX = '/ui/api/rest/';
const TOKEN_TTL_SECONDS = 300;

/**
 * The live dashboard at https://localhost:<port>/ui/: the page's files, its sign-in, a thin read model
 * (the device list, the hub view, the telemetry stream), live updates as server-sent events, and the
 * hub's own REST API under /ui/api/rest/, which it calls with a token of the session's policy, so
 * that the page goes through the same routes and rights checks as the SDKs.
 */
export class Dashboard {
  private readonly sessions = new DashboardSessions({ policy: SESSION_POLICY, lifetimeMs: SESSION_LIFETIME_MS });
  private readonly live: LiveStream;
  private readonly feed: TelemetryFeed;
  private readonly startedAt = new Date();
  private readonly tick: NodeJS.Timeout;
  private devicesTimer?: NodeJS.Timeout;
  private devicesSent = '';
  private readonly onLogLine = (line: LogLine) => this.live.send('log', line);

  constructor(
    private readonly hub: DashboardHub,
    private readonly rest: RequestHandler,
  ) {
    this.feed = new TelemetryFeed(hub.eventLog);
    this.live = new LiveStream((count) => this.feed.watch(count > 0));
    this.feed.on('messages', (messages) => this.live.send('telemetry', messages));
    hub.log.recent.on('line', this.onLogLine);
    hub.twins.on('changed', (key, version) => {
      this.live.send('twin', { ...key, version });
      this.devicesChanged();
    });
    for (const event of ['created', 'deleted', 'disabled', 'rekeyed'] as const) hub.registry.on(event, () => this.devicesChanged());
    hub.presence.on('changed', () => this.devicesChanged());
    this.tick = setInterval(() => {
      if (this.live.size === 0) return;
      this.live.send('hub', this.overview());
      this.sendDevices();
    }, TICK_MS);
    this.tick.unref();
  }

  /** The URL that signs a browser in, once. */
  loginUrl(): string {
    return `https://${this.hub.hostName}:${this.hub.port}/ui/?token=${this.sessions.issueLoginToken()}`;
  }

  /** Ends the open pages' streams and stops listening (the hub is stopping). */
  close(): void {
    clearInterval(this.tick);
    clearTimeout(this.devicesTimer);
    this.hub.log.recent.off('line', this.onLogLine); // the log may outlive the hub
    this.live.close();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.route(req, res);
    } catch (err) {
      this.hub.log.error('ui', `${req.method} ${loggedUrl(req)} failed: ${(err as Error)?.stack ?? err}`);
      if (!res.headersSent) sendJson(res, 500, { message: 'The hub failed to handle the request' });
      else res.destroy();
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    setSecurityHeaders(res);
    const url = new URL(req.url ?? '/', 'https://hub');
    const path = url.pathname;
    const refused = refusal(req, [this.hub.hostName, 'localhost', '127.0.0.1', '[::1]'], this.hub.port);
    if (refused) return this.refuse(req, res, 403, refused);
    // A path that leaves /ui once resolved (/ui/../x) is nothing of the dashboard's.
    if (!isDashboardRequest(path)) return sendJson(res, 404, { message: 'No such file' });
    if (path === '/ui') return redirect(res, 308, '/ui/');
    const token = url.searchParams.get('token');
    if (path === '/ui/' && token !== null) return this.signIn(req, res, token);
    // The stylesheet holds nothing of the hub; the signed-out page uses it too.
    if (path === '/ui/style.css') return this.serveFile(res, 'style.css');
    const session = this.sessions.find(cookie(req, this.cookieName()));
    if (!session) return this.refuse(req, res, 401, 'no session (open the URL hub start printed)');
    if (path.startsWith(REST_PREFIX)) return this.callRest(req, res, session, url);
    if (path.startsWith('/ui/api/')) return this.api(req, res, session, path.slice('/ui/api/'.length));
    if (req.method !== 'GET') return sendJson(res, 405, { message: `${req.method} is not allowed here` });
    return this.serveFile(res, path === '/ui/' ? 'index.html' : path.slice('/ui/'.length));
  }

  /** The cookie is named by port: cookies are not kept apart by port, and two hubs may run side by side. */
  private cookieName(): string {
    return `__Secure-iothub-tut-ui-${this.hub.port}`;
  }

  private async signIn(req: IncomingMessage, res: ServerResponse, token: string): Promise<void> {
    const signedIn = this.sessions.redeem(token);
    if (!signedIn) return this.refuse(req, res, 401, "a login token that is spent or not this hub's");
    this.hub.log.info('ui', 'a browser signed in to the dashboard');
    res.setHeader('Set-Cookie', sessionCookie(this.cookieName(), signedIn.cookieValue, SESSION_LIFETIME_MS / 1000));
    // Off the URL with the token, so that it stays out of the history and a reload works.
    return redirect(res, 303, '/ui/');
  }

  private async refuse(req: IncomingMessage, res: ServerResponse, status: 401 | 403, reason: string): Promise<void> {
    this.hub.log.info('ui', `${req.method} ${loggedUrl(req)}: refused, ${reason}`);
    if (status === 403) return sendJson(res, 403, { message: 'Forbidden' });
    if (req.url?.startsWith('/ui/api/'))
      return sendJson(res, 401, { message: 'Not signed in: open the dashboard URL that hub start printed.' });
    return this.serveFile(res, 'signed-out.html', 401);
  }

  private async api(req: IncomingMessage, res: ServerResponse, session: DashboardSession, name: string): Promise<void> {
    const route = `${req.method} ${name}`;
    switch (route) {
      case 'GET devices':
        return sendJson(res, 200, this.devices());
      case 'GET overview':
        return sendJson(res, 200, this.overview());
      case 'GET telemetry':
        return sendJson(res, 200, this.feed.recent(TELEMETRY_BACKLOG));
      case 'GET live':
        return this.live.open(res, session, [
          ['devices', this.devices()],
          ['hub', this.overview()],
          ['backlog', this.feed.recent(TELEMETRY_BACKLOG)],
        ]);
      case 'POST c2d':
        return this.sendC2d(res, session, await readSmallJson(req));
      case 'POST connection-string':
        return this.connectionString(res, session, await readSmallJson(req));
      case 'POST login-link':
        return sendJson(res, 200, { url: this.loginUrl() });
      case 'POST sign-out':
        this.sessions.end(session);
        this.live.closeSession(session.id);
        res.setHeader('Set-Cookie', sessionCookie(this.cookieName(), '', 0));
        return sendJson(res, 200, { signedOut: true });
      default:
        return sendJson(res, 404, { message: `No such dashboard call: ${route}` });
    }
  }

  /** One identity's connection string, on request (the device list carries no keys). */
  private connectionString(res: ServerResponse, session: DashboardSession, body: unknown): void {
    const { deviceId, moduleId } = (body ?? {}) as { deviceId?: unknown; moduleId?: unknown };
    if (typeof deviceId !== 'string' || (moduleId !== undefined && typeof moduleId !== 'string')) {
      return sendJson(res, 400, { message: 'The body must be {"deviceId": "...", "moduleId": "..." (optional)}' });
    }
    const policy = this.hub.auth.policy(session.policy);
    if (!policy || !grants(policy, 'RegistryRead'))
      return sendJson(res, 403, { message: `The policy '${session.policy}' does not grant RegistryRead` });
    const record = this.hub.registry.find(deviceId, moduleId || undefined);
    if (!record) return sendJson(res, 404, { message: `No identity ${deviceId}${moduleId ? `/${moduleId}` : ''}` });
    return sendJson(res, 200, { connectionString: identityConnectionString(this.hub.hostName, record) });
  }

  /**
   * Queues a cloud-to-device message, as azure-iothub's Client.send does over AMQP (a browser cannot
   * speak AMQP): with ServiceConnect, a message id, the ack asked for, IoT Hub's errors (404001,
   * 403004 queue full, 429 throttled: it counts against the tier's C2D sends). Answers the message id and the device's queue depth.
   */
  private sendC2d(res: ServerResponse, session: DashboardSession, body: unknown): void {
    const { deviceId, message, ack } = (body ?? {}) as { deviceId?: unknown; message?: unknown; ack?: unknown };
    if (typeof deviceId !== 'string' || typeof message !== 'string' || (ack !== undefined && typeof ack !== 'string')) {
      return sendJson(res, 400, {
        message: 'The body must be {"deviceId": "...", "message": "...", "ack": "none|positive|negative|full" (optional)}',
      });
    }
    const policy = this.hub.auth.policy(session.policy);
    if (!policy || !grants(policy, 'ServiceConnect'))
      return sendJson(res, 403, { message: `The policy '${session.policy}' does not grant ServiceConnect` });
    const messageId = randomUUID();
    try {
      if (this.hub.throttle && !this.hub.throttle.allow('c2d')) {
        throw hubErrors.throttled('Cloud-to-device sends are throttled for this hub tier; back off and retry.');
      }
      this.hub.c2d.enqueue({ deviceId, messageId, ...(ack ? { ack } : {}), properties: {}, body: Buffer.from(message) });
    } catch (err) {
      if (!(err instanceof HubError)) throw err;
      this.hub.log.info('ui', `refused a cloud-to-device message to ${deviceId}: ${err.message}`);
      return sendJson(res, err.status, err.toBody(messageId));
    }
    this.hub.log.debug('ui', `queued cloud-to-device message ${messageId} for ${deviceId}`);
    return sendJson(res, 200, { messageId, depth: this.hub.c2d.depth(deviceId) });
  }

  /** The hub's REST API as the SDKs call it, with a short-lived token of the session's policy. */
  private async callRest(req: IncomingMessage, res: ServerResponse, session: DashboardSession, url: URL): Promise<void> {
    const policy = this.hub.auth.policy(session.policy);
    if (!policy) return sendJson(res, 403, { message: `The policy '${session.policy}' no longer exists` });
    req.url = `/${url.pathname.slice(REST_PREFIX.length)}${url.search}`;
    req.headers.authorization = createSasToken(this.hub.hostName, policy.primaryKey, policy.keyName, TOKEN_TTL_SECONDS);
    return this.rest(req, res);
  }

  private async serveFile(res: ServerResponse, name: string, status = 200): Promise<void> {
    const file = await uiFile(name);
    if (!file) return sendJson(res, 404, { message: 'No such file' });
    res.writeHead(status, { 'Content-Type': file.contentType, 'Content-Length': file.body.length });
    res.end(file.body);
  }

  private overview(): HubOverview {
    const { registry, presence, methods, log } = this.hub;
    return {
      hostName: this.hub.hostName,
      ports: { tls: this.hub.port, eventHub: this.hub.eventHubPort },
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.floor((Date.now() - this.startedAt.getTime()) / 1000),
      counts: { devices: registry.countDevices(), modules: registry.allModules().length },
      connections: { devices: presence.connectedCount(), dashboardStreams: this.live.size },
      telemetry: { perSecond: this.feed.rate(), sinceStart: this.feed.total },
      methodsInFlight: methods.inFlight(),
      cloudToDevice: Object.fromEntries(this.hub.c2d.depths()),
      recentProblems: log.recent.lines(),
    };
  }

  private devices() {
    return identityViews(this.hub.registry, this.hub.twins, this.hub.presence);
  }

  /** Something in the device list changed: send it soon (a burst of connects is one update). */
  private devicesChanged(): void {
    if (this.live.size === 0 || this.devicesTimer) return;
    this.devicesTimer = setTimeout(() => {
      this.devicesTimer = undefined;
      this.sendDevices();
    }, DEVICES_DEBOUNCE_MS);
  }

  /** Sends the device list when it differs from the one sent last. */
  private sendDevices(): void {
    const devices = this.devices();
    const text = JSON.stringify(devices);
    if (text === this.devicesSent) return;
    this.devicesSent = text;
    this.live.send('devices', devices);
  }
}

/** The request's URL for the log: a login token is a secret. */
function loggedUrl(req: IncomingMessage): string {
  return (req.url ?? '').replace(/token=[^&]*/, 'token=***');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function redirect(res: ServerResponse, status: number, location: string): void {
  res.writeHead(status, { Location: location, 'Content-Length': 0 });
  res.end();
}

async function readSmallJson(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8');
    if (text.length > MAX_SMALL_BODY_BYTES) return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
