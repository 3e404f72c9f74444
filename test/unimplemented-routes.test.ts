import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type iothub from 'azure-iothub';
import { restApiClient } from '../src/clients/service-clients.js';
import { createSasToken } from '../src/hub/auth/sas-token.js';
import { restCall, startTestHub, type TestHub } from './helpers/hub.js';

const require = createRequire(import.meta.url);
const { JobClient } = require('azure-iothub/dist/job_client.js') as Pick<typeof iothub, 'JobClient'>;

describe('routes IoT Hub has and the local hub lacks: 501 NotImplemented, not 404', () => {
  let t: TestHub;
  let token: string;
  before(async () => {
    t = await startTestHub();
    token = createSasToken('localhost', t.hub.serviceConnectionString().match(/SharedAccessKey=([^;]+)/)![1], 'iothubowner', 600);
  });
  after(() => t.dispose());

  const features: Array<[method: string, path: string, named: RegExp]> = [
    ['GET', '/jobs/v2/job-1', /jobs \(scheduled/],
    ['GET', '/jobs/v2/query', /jobs \(scheduled/],
    ['POST', '/jobs/create', /import and export jobs/],
    ['GET', '/configurations/config-1', /configurations/],
    ['POST', '/devices/edge-1/applyConfigurationContent', /configurations/],
    ['GET', '/digitaltwins/pnp-1', /digital twin API/],
    ['POST', '/digitaltwins/pnp-1/components/thermostat1/commands/reboot', /digital twin API/],
    ['POST', '/devices/d1/files', /file upload/],
    ['POST', '/devices/d1/messages/events', /HTTPS device transport/],
    ['DELETE', '/devices/d1/commands', /cloud-to-device/],
    ['GET', '/statistics/service', /service statistics/],
  ];
  for (const [method, path, named] of features) {
    test(`${method} ${path}: 501 with IoT Hub's error body naming the feature`, async () => {
      const answer = await restCall(t, method, `${path}?api-version=2021-04-12`, token, method === 'GET' || method === 'DELETE' ? undefined : '{}');
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

  test("the service SDK reports the missing feature, not a missing device (azure-iothub's JobClient)", async () => {
    const jobs = new JobClient(restApiClient(t.connection).client as unknown as ConstructorParameters<typeof JobClient>[0]);
    const err = await jobs.getJob('job-1').then(() => assert.fail('getJob should fail'), (e: Error) => e);
    assert.match(err.message, /does not implement jobs/);
    assert.notEqual(err.constructor.name, 'DeviceNotFoundError');
  });
});
