import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { restApiClient } from '../../src/clients/service-clients.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { restCall, startTestHub, type TestHub } from '../helpers/hub.js';

describe('routes IoT Hub has and the local hub lacks: 501 NotImplemented, not 404', () => {
  let t: TestHub;
  let token: string;
  before(async () => {
    t = await startTestHub();
    token = createSasToken('localhost', t.hub.serviceConnectionString().match(/SharedAccessKey=([^;]+)/)![1], 'iothubowner', 600);
  });
  after(() => t.dispose());

  const features: Array<[method: string, path: string, named: RegExp]> = [
    ['POST', '/twins/d1/streams/s1', /device streams/],
    ['GET', '/messages/serviceBound/feedback', /cloud-to-device feedback over HTTPS/],
  ];
  for (const [method, path, named] of features) {
    test(`${method} ${path}: 501 with IoT Hub's error body naming the feature`, async () => {
      const answer = await restCall(
        t,
        method,
        `${path}?api-version=2021-04-12`,
        token,
        method === 'GET' || method === 'DELETE' ? undefined : '{}',
      );
      assert.equal(answer.status, 501);
      assert.match(answer.body.Message, /^ErrorCode:NotImplemented;The local hub does not implement /);
      assert.match(answer.body.Message, named);
      assert.equal(answer.body.errorCode, 501000);
    });
  }

  test('a path IoT Hub does not have either stays 404 NotFound; a wrong method on a real route stays 405', async () => {
    const unknown = await restCall(t, 'GET', '/no/such/thing?api-version=2021-04-12', token);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.Message, /^ErrorCode:NotFound;/);
    assert.equal((await restCall(t, 'PATCH', '/devices/d1?api-version=2021-04-12', token, '{}')).status, 405);
  });

  test("the service SDK reports the missing feature, not a missing device (azure-iothub's REST client)", async () => {
    const { client } = restApiClient(t.connection);
    const err = await new Promise<Error>((resolve) =>
      (client as unknown as { executeApiCall: (...args: unknown[]) => void }).executeApiCall(
        'GET',
        '/messages/serviceBound/feedback?api-version=2021-04-12',
        {},
        null,
        undefined,
        undefined,
        (e: Error | null) => resolve(e ?? assert.fail('the call should fail')),
      ),
    );
    assert.match(err.message, /does not implement cloud-to-device feedback over HTTPS/);
    assert.notEqual(err.constructor.name, 'DeviceNotFoundError');
  });
});
