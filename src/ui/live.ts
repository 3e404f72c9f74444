// What the page knows of the hub, kept current by the hub's server-sent events (/ui/api/live), and
// a small event bus for the views: each view subscribes when shown and unsubscribes when left.

import type { HubOverview, IdentityView } from '../hub/dashboard/read-model.js';
import type { TelemetryMessage } from '../hub/dashboard/telemetry-feed.js';
import type { LogLine } from '../hub/log.js';
import { signedOut } from './api.js';

export type { HubOverview, IdentityView, LogLine, TelemetryMessage };

/** A twin was written (tags, desired or reported). */
export interface TwinChange {
  deviceId: string;
  moduleId?: string;
  version: number;
}

export type LiveState = 'connecting' | 'live' | 'reconnecting';

interface LiveEvents {
  devices: IdentityView[];
  hub: HubOverview;
  /** New messages, oldest first. */
  telemetry: TelemetryMessage[];
  twin: TwinChange;
  connection: LiveState;
}

/** How many messages the page keeps (the stream and the chart show from these). */
const MAX_MESSAGES = 1000;

export const state = {
  devices: [] as IdentityView[],
  overview: undefined as HubOverview | undefined,
  messages: [] as TelemetryMessage[],
  connection: 'connecting' as LiveState,
};

const listeners = new Map<keyof LiveEvents, Set<(data: never) => void>>();

/** Calls `listener` on each `event`; returns the unsubscribe. */
export function on<K extends keyof LiveEvents>(event: K, listener: (data: LiveEvents[K]) => void): () => void {
  let set = listeners.get(event);
  if (!set) listeners.set(event, (set = new Set()));
  set.add(listener);
  return () => set.delete(listener);
}

function emit<K extends keyof LiveEvents>(event: K, data: LiveEvents[K]): void {
  for (const listener of listeners.get(event) ?? []) (listener as (data: LiveEvents[K]) => void)(data);
}

export function messageKey(message: TelemetryMessage): string {
  return `${message.partition}:${message.sequenceNumber}`;
}

/** Adds messages not seen yet (a reconnect's backlog repeats some); emits the new ones. */
function addMessages(messages: TelemetryMessage[]): void {
  const seen = new Set(state.messages.map(messageKey));
  const fresh = messages.filter((m) => !seen.has(messageKey(m)));
  if (fresh.length === 0) return;
  state.messages.push(...fresh);
  state.messages.splice(0, Math.max(0, state.messages.length - MAX_MESSAGES));
  emit('telemetry', fresh);
}

function setConnection(connection: LiveState): void {
  state.connection = connection;
  emit('connection', connection);
}

/** Opens the live stream; the browser reconnects it by itself, and a refused one means the session is gone. */
export function connectLive(): void {
  const source = new EventSource('/ui/api/live');
  const data = <T>(event: Event): T => JSON.parse((event as MessageEvent<string>).data) as T;
  source.addEventListener('open', () => setConnection('live'));
  source.addEventListener('error', () => {
    if (source.readyState !== EventSource.CLOSED) return setConnection('reconnecting');
    // The hub answered with an error (a 401 once the session is gone): ask it plainly which.
    setConnection('reconnecting');
    fetch('/ui/api/overview').then(
      (response) => (response.status === 401 ? signedOut() : setTimeout(connectLive, 2000)),
      () => setTimeout(connectLive, 2000),
    );
  });
  source.addEventListener('devices', (event) => {
    state.devices = data<IdentityView[]>(event);
    emit('devices', state.devices);
  });
  source.addEventListener('hub', (event) => {
    state.overview = data<HubOverview>(event);
    emit('hub', state.overview);
  });
  source.addEventListener('backlog', (event) => addMessages(data<TelemetryMessage[]>(event)));
  source.addEventListener('telemetry', (event) => addMessages(data<TelemetryMessage[]>(event)));
  source.addEventListener('twin', (event) => emit('twin', data<TwinChange>(event)));
  source.addEventListener('log', (event) => {
    if (!state.overview) return;
    state.overview.recentProblems = [...state.overview.recentProblems, data<LogLine>(event)].slice(-50);
    emit('hub', state.overview);
  });
}

/** The label of an identity, as the views show it: deviceId or deviceId/moduleId. */
export function identityLabel(identity: { deviceId: string; moduleId?: string }): string {
  return identity.moduleId ? `${identity.deviceId}/${identity.moduleId}` : identity.deviceId;
}
