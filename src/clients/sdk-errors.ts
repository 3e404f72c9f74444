import { ExitCode, ToolkitError } from './errors.js';
import { createCommand, type Identity } from './identity.js';

/**
 * Turns what the SDKs throw into one line for the user and an exit code. The SDKs translate IoT
 * Hub's status codes into error classes; their names are the stable part. With the identity the
 * call was about, "not found" says how to create it.
 */
export function explain(err: unknown, context = '', identity?: Identity): ToolkitError {
  if (err instanceof ToolkitError) return err;
  const error = translate(err, context);
  if (identity && error.exitCode === ExitCode.notFound) {
    error.message = `${error.message.replace(/\.$/, '')}. Create it with '${createCommand(identity)}'.`;
  }
  return error;
}

function translate(err: unknown, context: string): ToolkitError {
  // @azure/event-hubs ends its retries with an AggregateError of each attempt's error.
  if (err instanceof AggregateError && err.errors.length > 0) return translate(err.errors[err.errors.length - 1], context);
  const e = err as {
    name?: string;
    constructor?: { name?: string };
    message?: string;
    code?: string;
    response?: { statusCode?: number };
    responseBody?: unknown;
  };
  const kind = e?.constructor?.name && e.constructor.name !== 'Error' ? e.constructor.name : (e?.name ?? '');
  const message = oneLine(e?.message ?? String(err));
  const where = context ? `${context}: ` : '';
  // Node's network errors, by their code or, wrapped by an SDK, inside its message.
  const network = `${e?.code ?? ''} ${message}`;
  if (/ECONNREFUSED/.test(network)) {
    return new ToolkitError(
      `${where}the hub is not reachable (connection refused). Is it running? Start one with 'iothub-tut hub start'.`,
      ExitCode.unavailable,
    );
  }
  // ENOTFOUND: no such name; EAI_AGAIN: no answer from DNS (offline, or no resolver at all).
  if (/ENOTFOUND|EAI_AGAIN|EAI_FAIL/.test(network)) {
    return new ToolkitError(
      `${where}the hub's host name does not resolve; check the host name in the connection string.`,
      ExitCode.unavailable,
    );
  }
  if (/self.signed|unable to verify|UNABLE_TO_VERIFY|DEPTH_ZERO/i.test(network)) {
    return new ToolkitError(
      `${where}the hub's TLS certificate is not trusted; restart 'iothub-tut hub start' so the toolkit finds its CA.`,
      ExitCode.unavailable,
    );
  }
  // rhea-promise's words for an AMQP connection closed before it opened, such as TLS spoken to a plain port.
  if (message === 'Failed to connect') {
    return new ToolkitError(
      `${where}the endpoint closed the connection before it opened; check Endpoint (a local hub's Event Hub-compatible endpoint is plain AMQP: its connection string ends with ';UseDevelopmentEmulator=true').`,
      ExitCode.unavailable,
    );
  }
  // azure-iothub's AMQP transport wraps what refused its connect ("AMQP Transport: Could not connect").
  const amqpError = (err as { amqpError?: unknown }).amqpError;
  if (amqpError instanceof Error && amqpError !== err) return translate(amqpError, context);
  // azure-iothub has no class for a 404 other than DeviceNotFound: IoT Hub's errorCode tells them apart.
  const hub = hubErrorBody(e?.responseBody);
  if (hub.errorCode === 404103) {
    return new ToolkitError(
      `${where}the device is not online (404103 DeviceNotOnline): start the device app first, or give it time with --connect-timeout.`,
      ExitCode.offline,
    );
  }
  switch (e?.code) {
    // @azure/event-hubs tells its errors apart by code (they are all MessagingError).
    case 'UnauthorizedError':
      return new ToolkitError(
        `${where}not authorized: ${sentence(message)} Check the key in the Event Hub-compatible connection string.`,
        ExitCode.unauthorized,
      );
    case 'MessagingEntityNotFoundError':
      return new ToolkitError(
        /\/ConsumerGroups\//i.test(message)
          ? `${where}not found: ${sentence(message)} Check the consumer group (portal: IoT hub > Built-in endpoints > Consumer Groups; a local hub has those 'hub start --consumer-group' names).`
          : `${where}not found: ${sentence(message)} Check EntityPath (portal: IoT hub > Built-in endpoints).`,
        ExitCode.notFound,
      );
  }
  switch (kind) {
    case 'DeviceNotFoundError':
      return new ToolkitError(`${where}${message || 'device not found'}`, ExitCode.notFound);
    case 'UnauthorizedError':
      return new ToolkitError(
        `${where}not authorized: ${sentence(message)} Check the key in the connection string.`,
        ExitCode.unauthorized,
      );
    case 'TooManyDevicesError': // what the SDK makes of a 403
      return new ToolkitError(
        `${where}forbidden: ${sentence(message)} The shared access policy lacks the right for this.`,
        ExitCode.unauthorized,
      );
    case 'ArgumentError':
      return new ToolkitError(`${where}${message}`, ExitCode.usage);
    case 'InvalidEtagError':
      return new ToolkitError(
        `${where}the twin changed since it was read (412 PreconditionFailed); run the command again.`,
        ExitCode.conflict,
      );
    case 'DeviceAlreadyExistsError':
      return new ToolkitError(`${where}${message}`, ExitCode.conflict);
    case 'ThrottlingError':
    case 'ServiceUnavailableError':
      return new ToolkitError(`${where}the hub is busy (${message}); try again shortly.`, ExitCode.unavailable);
    case 'TimeoutError':
    case 'GatewayTimeoutError':
    case 'DeviceTimeoutError':
      return new ToolkitError(`${where}timed out: ${message}`, ExitCode.timeout);
    case 'DeviceMaximumQueueDepthExceededError':
      return new ToolkitError(
        `${where}the device's queue is full (403004 DeviceMaximumQueueDepthExceeded: 50 messages); let the device receive them, or purge its queue.`,
        ExitCode.unavailable,
      );
    case 'MessageTooLargeError':
      return new ToolkitError(`${where}the message is larger than IoT Hub accepts (256 KB).`, ExitCode.tooLarge);
    case 'NotConnectedError': // azure-iothub's AMQP client, when its connection closed or never opened (a refused connect included)
      return new ToolkitError(
        `${where}the hub is not reachable (its AMQP connection closed: ${message}). Is it running? Start one with 'iothub-tut hub start'.`,
        ExitCode.unavailable,
      );
  }
  if (e?.response?.statusCode === 404) return new ToolkitError(`${where}not found: ${hub.message ?? message}`, ExitCode.notFound);
  return new ToolkitError(`${where}${message || kind || 'unexpected error'}`, ExitCode.failure);
}

/** IoT Hub's error body, as azure-iothub keeps it (a JSON string) on the errors it throws. */
function hubErrorBody(body: unknown): { errorCode?: number; message?: string } {
  if (typeof body !== 'string') return {};
  try {
    const parsed = JSON.parse(body) as { errorCode?: unknown; Message?: unknown };
    const classic = typeof parsed.Message === 'string' ? /^ErrorCode:[^;]*;(.*)$/s.exec(parsed.Message)?.[1] : undefined;
    return { errorCode: typeof parsed.errorCode === 'number' ? parsed.errorCode : undefined, message: classic && oneLine(classic) };
  } catch {
    return {};
  }
}

/** The text with one full stop at its end. */
function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function oneLine(text: string): string {
  return text.split('\n')[0].trim();
}
