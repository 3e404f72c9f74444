import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HubError, hubErrors } from '../errors.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { Router } from './router.js';
import type { HubLog } from '../log.js';
import { METHOD_METER_BYTES, type Throttle } from '../throttling.js';
import { throttleOf, type OperationId } from './operations.js';
import { jsonProblem } from '../json-bounds.js';
import { notImplemented } from './unimplemented-routes.js';

/** Request bodies above this are refused before they are buffered (IoT Hub's largest, a twin, is far smaller). */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The REST side of the hub: authenticate, parse, route, and answer errors as IoT Hub does. A failed
 * request is an info line in the log; at debug level every request is one line (operation, method,
 * path, status, time taken, tracking id).
 */
export function createHttpHandler(router: Router, auth: Authenticator, log: HubLog, throttle?: Throttle) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const trackingId = randomUUID().replace(/-/g, '');
    const startedMs = performance.now();
    let operation: OperationId | undefined;
    let status: number;
    try {
      const url = requestUrl(req.url);
      const found = router.match(req.method ?? 'GET', url.pathname);
      if (typeof found !== 'object') {
        // A real route always wins; only then is a path IoT Hub has told apart from one nobody has.
        throw (
          notImplemented(req.method ?? 'GET', url.pathname) ??
          (found === 'method'
            ? hubErrors.methodNotAllowed(`${req.method} is not allowed on ${url.pathname}`)
            : hubErrors.notFound(`No such resource: ${url.pathname}`))
        );
      }
      operation = found.route.operation;
      auth.authorizeService(req.headers.authorization, found.route.right, url.pathname);
      if (throttle) checkThrottle(throttle, operation, req);
      const body = await readJsonBody(req);
      const result = await found.route.handle({ params: found.params, query: url.searchParams, headers: req.headers, body });
      status = result.status;
      send(res, result.status, result.body, { 'iothub-tracking-id': trackingId, ...result.headers });
    } catch (err) {
      const error = err instanceof HubError ? err : hubErrors.serverError('The hub failed to handle the request');
      status = error.status;
      if (!(err instanceof HubError))
        log.error('rest', `${req.method} ${req.url} failed (tracking id ${trackingId}): ${(err as Error)?.stack ?? err}`);
      else if (log.enabled('info'))
        log.info(
          'rest',
          `${operation ?? 'no operation'}: ${req.method} ${req.url}: ${error.status} ${error.code} ${error.message} (tracking id ${trackingId})`,
        );
      send(res, error.status, error.toBody(trackingId), { 'iothub-errorcode': error.code, 'iothub-tracking-id': trackingId });
    }
    if (log.enabled('debug')) {
      const ms = (performance.now() - startedMs).toFixed(1);
      log.debug('rest', `${operation ?? 'no operation'}: ${req.method} ${req.url} ${status} ${ms} ms (tracking id ${trackingId})`);
    }
  };
}

function checkThrottle(throttle: Throttle, operation: OperationId, req: IncomingMessage): void {
  const kind = throttleOf(operation);
  if (!kind) return;
  // A direct method's request is metered by its declared size, in started 4 KB units.
  const meters = kind === 'methods' ? Math.max(1, Math.ceil(Number(req.headers['content-length'] ?? 0) / METHOD_METER_BYTES)) : 1;
  if (!throttle.allow(kind, meters)) {
    throw hubErrors.throttled(
      `The ${throttle.tier.toUpperCase()} throttle for ${kind} operations was exceeded (${operation}); back off and retry.`,
    );
  }
}

export function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  if (res.headersSent) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    ...(text ? { 'Content-Type': 'application/json; charset=utf-8' } : {}),
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function requestUrl(target = '/'): URL {
  try {
    return new URL(target, 'https://hub');
  } catch {
    throw hubErrors.argumentInvalid('The request target is not a valid URL path');
  }
}

/** Decodes UTF-8 strictly (a leading BOM is skipped): invalid bytes are refused, not replaced. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A JSON media type: application/json, or a structured +json one (parameters such as charset aside). */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * The request body as JSON, or undefined when there is none. A body must be JSON (Content-Type
 * application/json, or none), UTF-8, at most 1 MB, and within the bounds of json-bounds.ts: each
 * failure is a 400 (413 for the size) with IoT Hub's error code, before any route sees the body.
 */
async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const raw = await readBody(req, MAX_BODY_BYTES);
  if (raw.length === 0) return undefined;
  const type = req.headers['content-type'];
  if (type !== undefined && !JSON_MEDIA_TYPE.test(type)) {
    throw hubErrors.invalidContentType(`The request body must be JSON (Content-Type: application/json), not '${type.slice(0, 64)}'`);
  }
  let body: unknown;
  try {
    body = JSON.parse(utf8.decode(raw));
  } catch (err) {
    throw hubErrors.argumentInvalid(
      err instanceof SyntaxError ? 'The request body is not valid JSON' : 'The request body is not valid UTF-8',
    );
  }
  const problem = jsonProblem(body, 'body');
  if (problem) throw hubErrors.argumentInvalid(`The request body is refused: ${problem}`);
  return body;
}

/** The request body, refused (413) once it passes `max` bytes, before more of it is buffered; `limit` says whose limit that is. */
export async function readBody(req: IncomingMessage, max: number, limit?: string): Promise<Buffer> {
  const tooLarge = () => hubErrors.messageTooLarge(`The request body is larger than ${max} bytes${limit ? `, ${limit}` : ''}`);
  if (Number(req.headers['content-length'] ?? 0) > max) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
