// The page's calls to the hub: its REST API (as the SDKs call it; the hub signs each call with the
// session's policy) under /ui/api/rest/, and the dashboard's own read model under /ui/api/.

/** The header the hub requires on every state-changing call (with SameSite=Strict cookies, against CSRF). */
const UI_HEADERS = { 'X-Iothub-Tut-Ui': '1' };

/** A call the hub refused, with IoT Hub's error code when it gave one (e.g. 412002 PreconditionFailed). */
export class HubCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    readonly errorCode: number | undefined,
    message: string,
  ) {
    super(message);
  }

  /** One line for the page: status, IoT Hub's error name and its message. */
  describe(): string {
    return `${this.status}${this.code ? ` ${this.code}` : ''}${this.errorCode ? ` (${this.errorCode})` : ''}: ${this.message}`;
  }
}

export interface RestResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** An identity's REST path segment: devices/{id} or devices/{id}/modules/{id}, ids encoded. */
export function identityPath(root: 'devices' | 'twins', deviceId: string, moduleId?: string): string {
  return `${root}/${encodeURIComponent(deviceId)}${moduleId ? `/modules/${encodeURIComponent(moduleId)}` : ''}`;
}

/** A call to the hub's REST API, e.g. rest('PATCH', 'twins/myDevice', patch, { 'If-Match': '"AAAA"' }). */
export function rest<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RestResponse<T>> {
  return call<T>(method, `/ui/api/rest/${path}`, body, headers);
}

/** A GET of the dashboard's read model. */
export async function read<T>(name: string): Promise<T> {
  return (await call<T>('GET', `/ui/api/${name}`)).body;
}

/** A POST to the dashboard's own calls (connection-string, login-link, sign-out). */
export async function post<T>(name: string, body: unknown = {}): Promise<T> {
  return (await call<T>('POST', `/ui/api/${name}`, body)).body;
}

async function call<T>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<RestResponse<T>> {
  const response = await fetch(url, {
    method,
    headers: { ...UI_HEADERS, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const text = await response.text();
  const parsed = text ? parseJson(text) : undefined;
  // The hub signs the page's REST calls itself: any 401 means the session is gone.
  if (response.status === 401) signedOut();
  if (!response.ok) throw toError(response.status, parsed);
  return { status: response.status, body: parsed as T, headers: response.headers };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** IoT Hub's error body: {"Message":"ErrorCode:<Name>;<text>", "errorCode": 412002, "message": "<text>"}. */
function toError(status: number, body: unknown): HubCallError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { Message?: string; message?: string; errorCode?: number };
  const code = /^ErrorCode:([^;]+);/.exec(b.Message ?? '')?.[1];
  return new HubCallError(status, code, b.errorCode, b.message ?? (typeof body === 'string' && body ? body : `HTTP ${status}`));
}

/** The session is gone (signed out, expired, or the hub restarted): the page shows how to sign in again. */
export function signedOut(): void {
  window.location.assign('/ui/');
}
