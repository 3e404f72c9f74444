/** What one D2C load run is: its tag (a message property that tells this run's events apart) and its size. */
export interface D2CLoad {
  tag: string;
  devices: number;
  /** Messages in the whole run, over all devices. */
  messages: number;
  payloadBytes: number;
  /** Unacknowledged QoS 1 publishes (over HTTPS: requests in flight) per device. */
  window: number;
  timeMs: number;
  /** Over HTTPS: messages per request (a batch above 1). */
  batch?: number;
}

/**
 * The telemetry topic with its property bag, as azure-iot-device-mqtt builds it: message id,
 * correlation id, content type and encoding, and application properties (the run's tag).
 */
export function telemetryTopic(deviceId: string, tag: string, seq: number): string {
  return `devices/${deviceId}/messages/events/$.mid=${tag}-${seq}&$.cid=corr-${seq}&$.ct=application%2Fjson&$.ce=utf-8&bench=${tag}`;
}

/** A JSON body of exactly `bytes` bytes. */
export function telemetryBody(bytes: number): Buffer {
  const head = '{"temperature":21.5,"humidity":48.2,"pad":"';
  const tail = '"}';
  return Buffer.from(head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail);
}

/** How a publisher or an observer process did: counts, and wall-clock times comparable between processes. */
export interface D2CTally {
  count: number;
  failed?: number;
  firstError?: string;
  /** Wall-clock ms of the first publish (publishers) or first event (observers). */
  firstAt: number;
  /** Wall-clock ms of the last acknowledgement or event. */
  lastAt: number;
}
