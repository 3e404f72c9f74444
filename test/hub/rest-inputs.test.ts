import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:https';
import { createRegistry, createServiceClient } from '../../src/clients/service-clients.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { createLog } from '../../src/hub/log.js';
import { MAX_JSON_DEPTH } from '../../src/hub/json-bounds.js';
import { restCall, startTestHub, type TestHub } from '../helpers/hub.js';
import { until } from '../helpers/devices.js';
import { closed, deviceToken, rawConnect, subscribe } from '../helpers/mqtt.js';

const API = '?api-version=2021-04-12';
const DEVICE = 'inputs-dev';
const MODULE = 'inputs-mod';

/** `{"a":{"a":...leaf...}}` with `levels` objects, or `[[...]]` with `levels` arrays. */
const deepObject = (levels: number, leaf = '1') => `${'{"a":'.repeat(levels)}${leaf}${'}'.repeat(levels)}`;
const deepArray = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const base64Of = (bytes: number) => Buffer.alloc(bytes, 7).toString('base64');
const json = (value: unknown) => JSON.stringify(value);
const query = (text: string) => json({ query: text });

// IoT Hub's error codes (REST API reference, "Common error codes") and the names its Message carries.
const ARGUMENT_INVALID = 400004;
const CONTENT_TYPE = 400103;
const SQL_QUERY_INVALID = 400020;
const NAMES: Record<number, string> = {
  [ARGUMENT_INVALID]: 'ArgumentInvalid',
  [CONTENT_TYPE]: 'InvalidContentEncodingOrType',
  [SQL_QUERY_INVALID]: 'SqlQueryInvalid',
};

interface Case {
  name: string;
  method: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string | undefined>;
  errorCode: number;
  /** What the message must say, so that each case fails for its own reason. */
  message: RegExp;
}

const device = `/devices/${DEVICE}${API}`;
const newDevice = (id: string) => `/devices/${id}${API}`;
const moduleOf = `/devices/${DEVICE}/modules/${MODULE}${API}`;
const twin = `/twins/${DEVICE}${API}`;
const methods = `/twins/${DEVICE}/methods${API}`;
const devicesQuery = `/devices/query${API}`;

/** Every malformed input found, with IoT Hub's answer; most were a 500, a silent null or a stored 900 KB string before. */
const CASES: Case[] = [
  // Paths and URLs
  {
    name: 'a truncated %-escape in a device id',
    method: 'GET',
    path: '/devices/%E0%A4%A',
    errorCode: ARGUMENT_INVALID,
    message: /not valid %-encoded UTF-8/,
  },
  { name: 'a bare % in a device id', method: 'GET', path: '/devices/%', errorCode: ARGUMENT_INVALID, message: /%-encoded/ },
  {
    name: 'a %-escape that is not hex, in a twin path',
    method: 'GET',
    path: '/twins/%ZZ',
    errorCode: ARGUMENT_INVALID,
    message: /%-encoded/,
  },
  {
    name: 'an overlong UTF-8 escape in a module id',
    method: 'DELETE',
    path: `/devices/${DEVICE}/modules/%C0%AF`,
    errorCode: ARGUMENT_INVALID,
    message: /%-encoded/,
  },
  {
    name: 'an escaped lone surrogate in a device id',
    method: 'PUT',
    path: '/devices/%ED%A0%80',
    body: '{}',
    errorCode: ARGUMENT_INVALID,
    message: /%-encoded/,
  },
  {
    name: 'a request target that is not a URL path',
    method: 'GET',
    path: '//',
    errorCode: ARGUMENT_INVALID,
    message: /not a valid URL path/,
  },

  // Bodies, whatever the route
  {
    name: 'a body that is not JSON by its Content-Type',
    method: 'PUT',
    path: newDevice('in-ctype'),
    body: '{}',
    headers: { 'Content-Type': 'text/plain' },
    errorCode: CONTENT_TYPE,
    message: /must be JSON/,
  },
  {
    name: 'a form-encoded body (curl -d)',
    method: 'POST',
    path: devicesQuery,
    body: 'query=SELECT',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    errorCode: CONTENT_TYPE,
    message: /application\/json/,
  },
  {
    name: 'a body that is not UTF-8',
    method: 'PUT',
    path: newDevice('in-utf8'),
    body: Buffer.from('{"statusReason":"\xff\xfe"}', 'latin1'),
    errorCode: ARGUMENT_INVALID,
    message: /not valid UTF-8/,
  },
  {
    name: 'a body that is not JSON',
    method: 'PUT',
    path: newDevice('in-json'),
    body: '{"status":"enabled"',
    errorCode: ARGUMENT_INVALID,
    message: /not valid JSON/,
  },
  {
    name: `a body nested ${MAX_JSON_DEPTH + 1} deep in a field the route ignores`,
    method: 'PUT',
    path: newDevice('in-deep'),
    body: `{"etag":${deepArray(MAX_JSON_DEPTH)}}`,
    errorCode: ARGUMENT_INVALID,
    message: new RegExp(`body\\.etag.*at most ${MAX_JSON_DEPTH} levels`),
  },
  {
    name: '1e400 in a field the route ignores',
    method: 'PUT',
    path: newDevice('in-huge'),
    body: '{"cloudToDeviceMessageCount":1e400}',
    errorCode: ARGUMENT_INVALID,
    message: /cloudToDeviceMessageCount: the number is out of the range/,
  },

  // Identity bodies: wrong JSON types for every field, and IoT Hub's limits
  ...['[]', '"text"', 'null', '42', ''].map((body): Case => ({
    name: `an identity body of ${body || 'nothing'}`,
    method: 'PUT',
    path: newDevice('in-shape'),
    body,
    errorCode: ARGUMENT_INVALID,
    message: /must be a JSON object/,
  })),
  {
    name: 'a numeric deviceId',
    method: 'PUT',
    path: newDevice('in-id'),
    body: json({ deviceId: 5 }),
    errorCode: ARGUMENT_INVALID,
    message: /deviceId in the body does not match/,
  },
  {
    name: 'another moduleId in the body',
    method: 'PUT',
    path: `/devices/${DEVICE}/modules/in-m2${API}`,
    body: json({ moduleId: 'other' }),
    errorCode: ARGUMENT_INVALID,
    message: /moduleId in the body/,
  },
  {
    name: 'a device id of 129 characters',
    method: 'PUT',
    path: newDevice('d'.repeat(129)),
    body: '{}',
    errorCode: ARGUMENT_INVALID,
    message: /longer than 128/,
  },
  {
    name: 'a device id outside the allowed characters',
    method: 'PUT',
    path: newDevice('caf%C3%A9'),
    body: '{}',
    errorCode: ARGUMENT_INVALID,
    message: /deviceId 'café' is invalid/,
  },
  {
    name: 'a numeric status',
    method: 'PUT',
    path: newDevice('in-status'),
    body: json({ status: 5 }),
    errorCode: ARGUMENT_INVALID,
    message: /status must be 'enabled' or 'disabled', not 5/,
  },
  {
    name: 'an unknown status',
    method: 'PUT',
    path: newDevice('in-status'),
    body: json({ status: 'paused' }),
    errorCode: ARGUMENT_INVALID,
    message: /not 'paused'/,
  },
  {
    name: 'a statusReason of 129 characters',
    method: 'PUT',
    path: newDevice('in-reason'),
    body: json({ statusReason: 'r'.repeat(129) }),
    errorCode: ARGUMENT_INVALID,
    message: /statusReason is 129 characters long; IoT Hub allows at most 128/,
  },
  {
    name: 'a statusReason of 900 KB',
    method: 'PUT',
    path: newDevice('in-reason'),
    body: json({ statusReason: 'r'.repeat(900 * 1024) }),
    errorCode: ARGUMENT_INVALID,
    message: /statusReason is 921600 characters/,
  },
  {
    name: 'a numeric statusReason',
    method: 'PUT',
    path: newDevice('in-reason'),
    body: json({ statusReason: 5 }),
    errorCode: ARGUMENT_INVALID,
    message: /statusReason must be a string/,
  },
  {
    name: 'a statusReason with a lone surrogate',
    method: 'PUT',
    path: newDevice('in-reason'),
    body: '{"statusReason":"a\\ud800"}',
    errorCode: ARGUMENT_INVALID,
    message: /not well-formed Unicode/,
  },
  {
    name: "an object as a module's managedBy",
    method: 'PUT',
    path: moduleOf,
    body: json({ managedBy: {} }),
    headers: { 'If-Match': '"*"' },
    errorCode: ARGUMENT_INVALID,
    message: /managedBy must be a string/,
  },
  {
    name: 'authentication as a string',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: 'sas' }),
    errorCode: ARGUMENT_INVALID,
    message: /authentication must be a JSON object/,
  },
  {
    name: 'symmetricKey as an array',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { symmetricKey: [] } }),
    errorCode: ARGUMENT_INVALID,
    message: /authentication.symmetricKey must be a JSON object/,
  },
  {
    name: 'a numeric primaryKey',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { symmetricKey: { primaryKey: 123 } } }),
    errorCode: ARGUMENT_INVALID,
    message: /primaryKey must be a base64 string, not 123/,
  },
  {
    name: 'an object as secondaryKey',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { symmetricKey: { secondaryKey: {} } } }),
    errorCode: ARGUMENT_INVALID,
    message: /secondaryKey must be a base64 string/,
  },
  {
    name: 'a primaryKey that is not base64',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { symmetricKey: { primaryKey: 'not base64 at all!!' } } }),
    errorCode: ARGUMENT_INVALID,
    message: /primaryKey is not base64/,
  },
  {
    name: 'a key of 15 bytes',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { symmetricKey: { primaryKey: base64Of(15) } } }),
    errorCode: ARGUMENT_INVALID,
    message: /between 16 and 64 bytes.*has 15/,
  },
  {
    name: 'a key of 65 bytes',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { symmetricKey: { secondaryKey: base64Of(65) } } }),
    errorCode: ARGUMENT_INVALID,
    message: /between 16 and 64 bytes.*has 65/,
  },
  {
    name: 'an unknown authentication type',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { type: 'password' } }),
    errorCode: ARGUMENT_INVALID,
    message: /must be one of sas, selfSigned, certificateAuthority, none/,
  },
  {
    name: 'a numeric authentication type',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { type: 7 } }),
    errorCode: ARGUMENT_INVALID,
    message: /not 7/,
  },
  {
    name: 'a thumbprint that is neither SHA-1 nor SHA-256 hex',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: 'A'.repeat(39) } } }),
    errorCode: ARGUMENT_INVALID,
    message: /primaryThumbprint must be a SHA-1 \(40 hex digits\) or SHA-256/,
  },
  {
    name: 'selfSigned without a primary thumbprint',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { type: 'selfSigned', x509Thumbprint: { primaryThumbprint: null } } }),
    errorCode: ARGUMENT_INVALID,
    message: /'selfSigned' needs authentication\.x509Thumbprint\.primaryThumbprint/,
  },
  {
    name: 'a thumbprint with type sas',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { type: 'sas', x509Thumbprint: { primaryThumbprint: 'A'.repeat(40) } } }),
    errorCode: ARGUMENT_INVALID,
    message: /'sas' cannot specify thumbprints/,
  },
  {
    name: 'keys and thumbprints together',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { symmetricKey: { primaryKey: 'A'.repeat(44) }, x509Thumbprint: { primaryThumbprint: 'A'.repeat(64) } } }),
    errorCode: ARGUMENT_INVALID,
    message: /both symmetric keys and thumbprints/,
  },
  {
    name: 'keys with certificateAuthority',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { type: 'certificateAuthority', symmetricKey: { primaryKey: 'A'.repeat(44) } } }),
    errorCode: ARGUMENT_INVALID,
    message: /'certificateAuthority' cannot specify symmetric keys/,
  },
  {
    name: "authentication type 'none'",
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { type: 'none' } }),
    errorCode: ARGUMENT_INVALID,
    message: /'none' is not supported by the local hub/,
  },
  {
    name: 'a numeric thumbprint',
    method: 'PUT',
    path: newDevice('in-auth'),
    body: json({ authentication: { x509Thumbprint: { secondaryThumbprint: 1 } } }),
    errorCode: ARGUMENT_INVALID,
    message: /secondaryThumbprint must be a string/,
  },
  {
    name: 'capabilities as a number',
    method: 'PUT',
    path: newDevice('in-caps'),
    body: json({ capabilities: 5 }),
    errorCode: ARGUMENT_INVALID,
    message: /capabilities must be a JSON object/,
  },
  {
    name: 'iotEdge as a string',
    method: 'PUT',
    path: newDevice('in-caps'),
    body: json({ capabilities: { iotEdge: 'yes' } }),
    errorCode: ARGUMENT_INVALID,
    message: /capabilities.iotEdge must be true or false, not 'yes'/,
  },
  {
    name: 'If-Match with unbalanced quotes',
    method: 'PUT',
    path: device,
    body: '{}',
    headers: { 'If-Match': '"' },
    errorCode: ARGUMENT_INVALID,
    message: /If-Match must be \* or one etag/,
  },
  {
    name: 'If-Match with a list of etags',
    method: 'DELETE',
    path: device,
    headers: { 'If-Match': '"a", "b"' },
    errorCode: ARGUMENT_INVALID,
    message: /If-Match/,
  },
  {
    name: 'If-Match of 10,000 characters',
    method: 'PUT',
    path: device,
    body: '{}',
    headers: { 'If-Match': `"${'x'.repeat(10_000)}"` },
    errorCode: ARGUMENT_INVALID,
    message: /at most 128 characters/,
  },
  {
    name: 'top=0 on the device list',
    method: 'GET',
    path: `/devices${API}&top=0`,
    errorCode: ARGUMENT_INVALID,
    message: /top must be between 1 and 1000/,
  },
  { name: 'top=1001 on the device list', method: 'GET', path: `/devices${API}&top=1001`, errorCode: ARGUMENT_INVALID, message: /top/ },
  { name: 'top=abc on the device list', method: 'GET', path: `/devices${API}&top=abc`, errorCode: ARGUMENT_INVALID, message: /top/ },

  // Twins
  {
    name: '1e400 in tags (stored as null before)',
    method: 'PATCH',
    path: twin,
    body: '{"tags":{"a":1e400}}',
    errorCode: ARGUMENT_INVALID,
    message: /body\.tags\.a: the number is out of the range/,
  },
  {
    name: '-1e400 in desired properties',
    method: 'PATCH',
    path: twin,
    body: '{"properties":{"desired":{"a":[-1e400]}}}',
    errorCode: ARGUMENT_INVALID,
    message: /desired\.a\[0\]/,
  },
  {
    name: 'an object at level 11 of tags',
    method: 'PATCH',
    path: twin,
    body: `{"tags":${deepObject(12)}}`,
    errorCode: ARGUMENT_INVALID,
    message: /nested at most 10 levels/,
  },
  {
    name: 'tags nested 20,000 deep',
    method: 'PATCH',
    path: twin,
    body: `{"tags":${deepObject(20_000)}}`,
    errorCode: ARGUMENT_INVALID,
    message: /nested at most 64 levels/,
  },
  {
    name: 'a tag name with a lone surrogate',
    method: 'PUT',
    path: twin,
    body: '{"tags":{"\\ud800":1}}',
    errorCode: ARGUMENT_INVALID,
    message: /property name is not well-formed Unicode/,
  },
  {
    name: 'properties as an array',
    method: 'PATCH',
    path: twin,
    body: '{"properties":[]}',
    errorCode: ARGUMENT_INVALID,
    message: /properties must be a JSON object/,
  },
  {
    name: 'a twin body of a string',
    method: 'PATCH',
    path: twin,
    body: '"tags"',
    errorCode: ARGUMENT_INVALID,
    message: /twin must be a JSON object/,
  },
  {
    name: 'a twin If-Match with a space inside',
    method: 'PATCH',
    path: twin,
    body: '{"tags":{"a":1}}',
    headers: { 'If-Match': '"AAAA AAAE="' },
    errorCode: ARGUMENT_INVALID,
    message: /If-Match/,
  },

  // Direct methods
  {
    name: 'a method payload nested 20,000 deep (a stack overflow before)',
    method: 'POST',
    path: methods,
    body: `{"methodName":"m","payload":${deepObject(20_000)}}`,
    errorCode: ARGUMENT_INVALID,
    message: /body\.payload\.a\.a.*at most 64 levels/,
  },
  {
    name: 'a method payload of arrays nested 20,000 deep',
    method: 'POST',
    path: methods,
    body: `{"methodName":"m","payload":${deepArray(20_000)}}`,
    errorCode: ARGUMENT_INVALID,
    message: /at most 64 levels/,
  },
  {
    name: 'a method payload of 1e400 (sent as null before)',
    method: 'POST',
    path: methods,
    body: '{"methodName":"m","payload":1e400}',
    errorCode: ARGUMENT_INVALID,
    message: /body\.payload: the number/,
  },
  {
    name: 'a method payload over 128 KB',
    method: 'POST',
    path: methods,
    body: json({ methodName: 'm', payload: 'p'.repeat(128 * 1024) }),
    errorCode: ARGUMENT_INVALID,
    message: /payload is 131074 bytes; IoT Hub allows at most 131072 bytes/,
  },
  {
    name: 'a numeric methodName',
    method: 'POST',
    path: methods,
    body: json({ methodName: 5 }),
    errorCode: ARGUMENT_INVALID,
    message: /methodName/,
  },
  {
    name: 'responseTimeoutInSeconds as a string',
    method: 'POST',
    path: methods,
    body: json({ methodName: 'm', responseTimeoutInSeconds: '30' }),
    errorCode: ARGUMENT_INVALID,
    message: /responseTimeoutInSeconds must be a whole number/,
  },
  {
    name: 'connectTimeoutInSeconds of 1e300',
    method: 'POST',
    path: methods,
    body: json({ methodName: 'm', connectTimeoutInSeconds: 1e300 }),
    errorCode: ARGUMENT_INVALID,
    message: /connectTimeoutInSeconds/,
  },
  {
    name: 'a method body of an array',
    method: 'POST',
    path: methods,
    body: '[{"methodName":"m"}]',
    errorCode: ARGUMENT_INVALID,
    message: /must be a JSON object/,
  },

  // Queries
  {
    name: 'a condition in 3,000 parentheses (a stack overflow before)',
    method: 'POST',
    path: devicesQuery,
    body: query(`SELECT * FROM devices WHERE ${'('.repeat(3000)}a = 1${')'.repeat(3000)}`),
    errorCode: SQL_QUERY_INVALID,
    message: /nested more than 64 levels deep at position 93/,
  },
  {
    name: '8,000 unary minus signs (a stack overflow before)',
    method: 'POST',
    path: devicesQuery,
    body: query(`SELECT * FROM devices WHERE a = ${'-'.repeat(8000)}1`),
    errorCode: SQL_QUERY_INVALID,
    message: /nested more than 64 levels/,
  },
  {
    name: 'a number literal of 1e400',
    method: 'POST',
    path: devicesQuery,
    body: query('SELECT * FROM devices WHERE a = 1e400'),
    errorCode: SQL_QUERY_INVALID,
    message: /'1e400': number out of range/,
  },
  {
    name: 'a query of 8,193 characters',
    method: 'POST',
    path: devicesQuery,
    body: query(`SELECT * FROM devices WHERE a = '${'q'.repeat(8193 - 34)}'`),
    errorCode: SQL_QUERY_INVALID,
    message: /Query is 8193 characters long; the maximum is 8192/,
  },
  {
    name: 'a numeric query',
    method: 'POST',
    path: devicesQuery,
    body: json({ query: 5 }),
    errorCode: ARGUMENT_INVALID,
    message: /"query": "<query text>"/,
  },
  {
    name: 'a query body of an array',
    method: 'POST',
    path: devicesQuery,
    body: '["SELECT * FROM devices"]',
    errorCode: ARGUMENT_INVALID,
    message: /"query"/,
  },
  {
    name: 'a page size of abc',
    method: 'POST',
    path: devicesQuery,
    body: query('SELECT * FROM devices'),
    headers: { 'x-ms-max-item-count': 'abc' },
    errorCode: ARGUMENT_INVALID,
    message: /Page size must be a whole number from 1 to 1000/,
  },
  {
    name: 'a continuation token that is not one',
    method: 'POST',
    path: devicesQuery,
    body: query('SELECT * FROM devices'),
    headers: { 'x-ms-continuation': '%%%' },
    errorCode: ARGUMENT_INVALID,
    message: /continuation token is not valid/,
  },
];

describe("malformed REST input is a 400 with IoT Hub's error, never a 500", () => {
  let t: TestHub;
  let token: string;
  const errors: string[] = [];
  before(async () => {
    t = await startTestHub({ log: createLog('error', (line) => errors.push(line)) });
    token = createSasToken('localhost', t.hub.auth.policy('iothubowner')!.primaryKey, 'iothubowner', 3600);
    const registry = createRegistry(t.connection);
    await registry.create({ deviceId: DEVICE });
    await registry.addModule({ deviceId: DEVICE, moduleId: MODULE });
  });
  after(() => t.dispose());

  for (const c of CASES) {
    test(`${c.name}: 400 ${NAMES[c.errorCode]}`, async () => {
      const r = await restCall(t, c.method, c.path, token, c.body, { headers: c.headers });
      assert.equal(r.status, 400, json(r.body));
      assert.equal(r.body.errorCode, c.errorCode, r.body.message);
      assert.ok(r.body.Message.startsWith(`ErrorCode:${NAMES[c.errorCode]};`), r.body.Message);
      assert.match(r.body.message, c.message);
      assert.ok(r.body.message.length < 1000, 'the message does not echo the input whole');
    });
  }

  test('nothing refused was stored, and the hub logged no unexpected error', async () => {
    const listed = await restCall(t, 'GET', `/devices${API}`, token);
    assert.deepEqual(
      listed.body.map((d: { deviceId: string }) => d.deviceId),
      [DEVICE],
    );
    const twinNow = await restCall(t, 'GET', twin, token);
    assert.equal(twinNow.body.tags, undefined);
    assert.equal(twinNow.body.properties.desired.$version, 1);
    assert.deepEqual(errors, []);
  });
});

describe('valid identity input is still accepted', () => {
  let t: TestHub;
  let token: string;
  before(async () => {
    t = await startTestHub();
    token = createSasToken('localhost', t.hub.auth.policy('iothubowner')!.primaryKey, 'iothubowner', 3600);
  });
  after(() => t.dispose());

  test('an idle keep-alive connection outlives the 5 s after which Node agents drop it, so the client closes it first', async () => {
    // Node's global agent, which the SDKs' REST clients use, keeps an idle socket 5 s; a hub that also closed it
    // at 5 s raced a request sent on it (ECONNRESET).
    const agent = new Agent({ keepAlive: true, maxSockets: 1, timeout: 60_000 });
    try {
      const first = await restCall(t, 'GET', `/devices${API}`, token, undefined, { agent });
      const socket = Object.values(agent.freeSockets)[0]![0]!;
      let closedAt: number | undefined;
      socket.once('close', () => (closedAt = Date.now()));
      await new Promise((resolve) => setTimeout(resolve, 6000));
      assert.equal(closedAt, undefined, 'the hub closed the idle connection');
      const second = await restCall(t, 'GET', `/devices${API}`, token, undefined, { agent });
      assert.deepEqual([first.status, second.status], [200, 200]);
      assert.equal(Object.values(agent.freeSockets)[0]![0], socket, 'the second request went on the same connection');
    } finally {
      agent.destroy();
    }
  });

  test("what the SDK's deprecated Device class sends: nulls, 'disconnected', a string count", async () => {
    const legacy = {
      deviceId: 'ok-legacy',
      generationId: null,
      etag: null,
      connectionState: 'disconnected',
      status: 'enabled',
      statusReason: null,
      connectionStateUpdatedTime: null,
      statusUpdatedTime: null,
      lastActivityTime: null,
      cloudToDeviceMessageCount: '0',
      capabilities: {},
      authentication: {
        symmetricKey: { primaryKey: null, secondaryKey: null },
        x509Thumbprint: { primaryThumbprint: null, secondaryThumbprint: null },
      },
    };
    const r = await restCall(t, 'PUT', newDevice('ok-legacy'), token, json(legacy));
    assert.equal(r.status, 200, json(r.body));
    assert.equal(Buffer.from(r.body.authentication.symmetricKey.primaryKey, 'base64').length, 32, 'keys were generated');
  });

  test('the limits themselves: a statusReason of 128 characters (256 bytes), keys of 16 and 64 bytes, enums in any case', async () => {
    const reason = 'é'.repeat(128);
    const body = {
      statusReason: reason,
      status: 'Disabled',
      authentication: { type: 'SAS', symmetricKey: { primaryKey: base64Of(16), secondaryKey: base64Of(64) } },
      capabilities: { iotEdge: true },
    };
    const r = await restCall(t, 'PUT', newDevice('ok-limits'), token, json(body));
    assert.equal(r.status, 200, json(r.body));
    assert.equal(r.body.statusReason, reason);
    assert.equal(r.body.status, 'disabled');
    assert.deepEqual(r.body.capabilities, { iotEdge: true });
    assert.equal(r.body.authentication.symmetricKey.secondaryKey, base64Of(64));
  });

  test('a device read and sent back whole with its etag; a body without Content-Type; a UTF-8 BOM', async () => {
    const created = await restCall(t, 'PUT', newDevice('ok-roundtrip'), token, '{}', { headers: { 'Content-Type': undefined } });
    assert.equal(created.status, 200, json(created.body));
    const read = await restCall(t, 'GET', newDevice('ok-roundtrip'), token);
    const updated = await restCall(t, 'PUT', newDevice('ok-roundtrip'), token, json({ ...read.body, statusReason: 'maintenance' }), {
      headers: { 'If-Match': `"${read.body.etag}"` },
    });
    assert.equal(updated.status, 200, json(updated.body));
    assert.equal(updated.body.statusReason, 'maintenance');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json({ status: 'enabled' }))]);
    const withBom = await restCall(t, 'PUT', newDevice('ok-roundtrip'), token, bom, {
      headers: { 'Content-Type': 'application/json; charset=utf-8', 'If-Match': 'W/"*"' },
    });
    assert.equal(withBom.status, 200, json(withBom.body));
  });

  test('with 150 devices at the longest statusReason, GET /devices stays small', async () => {
    const registry = createRegistry(t.connection);
    for (let i = 0; i < 150; i++) await registry.create({ deviceId: `ok-many-${i}`, statusReason: 'r'.repeat(128) } as never);
    const refused = await restCall(t, 'PUT', newDevice('ok-many-huge'), token, json({ statusReason: 'r'.repeat(900 * 1024) }));
    assert.equal(refused.status, 400);
    const listed = await restCall(t, 'GET', `/devices${API}`, token);
    assert.equal(listed.body.length, 153);
    assert.ok(Buffer.byteLength(json(listed.body)) < 153 * 1024, 'at most 1 KB per device');
    const top = await restCall(t, 'GET', `/devices${API}&top=10`, token);
    assert.equal(top.body.length, 10);
  });

  test("azure-iothub's Registry reports a refused field as its ArgumentError, with IoT Hub's body", async () => {
    const registry = createRegistry(t.connection);
    const error = await registry.create({ deviceId: 'ok-sdk', statusReason: 'r'.repeat(129) } as never).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(error instanceof Error);
    assert.equal(error.constructor.name, 'ArgumentError');
    assert.equal(JSON.parse((error as Error & { responseBody: string }).responseBody).errorCode, ARGUMENT_INVALID);
  });
});

describe('device-side input with the same bounds', () => {
  let t: TestHub;
  before(async () => (t = await startTestHub()));
  after(() => t.dispose());

  test('a method answer nested too deep is refused: the device is disconnected and the caller gets 504, not a 500', async () => {
    const identity = (await createRegistry(t.connection).create({ deviceId: 'deep-answer' })).responseBody;
    const client = await rawConnect(
      t.hub,
      { deviceId: 'deep-answer' },
      deviceToken({ deviceId: 'deep-answer' }, identity.authentication!.symmetricKey!.primaryKey),
    );
    assert.ok(typeof client !== 'number', `connect refused: ${client}`);
    await subscribe(client, ['$iothub/methods/POST/#']);
    await until(() => t.hub.mqtt.isSubscribed({ deviceId: 'deep-answer' }, '$iothub/methods/POST/'), 'the device listens for methods');
    client.on('message', (topic) => {
      const rid = /\$rid=(\w+)/.exec(topic)![1];
      client.publish(`$iothub/methods/res/200/?$rid=${rid}`, deepObject(MAX_JSON_DEPTH + 1));
    });
    const call = createServiceClient(t.connection).invokeDeviceMethod('deep-answer', {
      methodName: 'm',
      payload: null,
      responseTimeoutInSeconds: 5,
    });
    const failure = await call.then(
      () => undefined,
      (err: { response?: { statusCode: number }; responseBody?: string }) => err,
    );
    await closed(client, 10_000);
    assert.equal(failure?.response?.statusCode, 504);
    assert.equal(JSON.parse(failure!.responseBody!).errorCode, 504101);
  });
});
