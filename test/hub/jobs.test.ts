import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type iothub from 'azure-iothub';
import { createJobClient, createRegistry } from '../../src/clients/service-clients.js';
import type { DeviceClient } from '../../src/clients/device-clients.js';
import { onDisk, startTestHub, restCall, type TestHub } from '../helpers/hub.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { Throttle } from '../../src/hub/throttling.js';
import { identityConnectionWithKey, parseConnection } from '../../src/clients/connection-string.js';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CliProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/hub.js';

const METHODS = '$iothub/methods/POST/';
const WAIT_MS = 60_000;

/** Polls getJob (bounded) until the job has ended, as the tutorial's monitorJob does. */
async function ended(jobs: iothub.JobClient, jobId: string): Promise<any> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const { jobStatus } = await jobs.getJob(jobId);
    if (['completed', 'failed', 'cancelled'].includes(jobStatus.status)) return jobStatus;
    if (Date.now() > deadline) assert.fail(`job ${jobId} still ${jobStatus.status} after ${WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The status and IoT Hub errorCode an SDK call fails with. */
async function failure(promise: Promise<unknown>): Promise<{ status?: number; errorCode?: number; code?: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { response?: { statusCode: number }; responseBody?: string };
    const body = e.responseBody ? JSON.parse(e.responseBody) : {};
    return { status: e.response?.statusCode, errorCode: body.errorCode, code: /ErrorCode:(\w+)/.exec(body.Message ?? '')?.[1] };
  }
  throw new Error('the call succeeded');
}

async function queryAll(registry: iothub.Registry, text: string, pageSize = 20): Promise<any[]> {
  const query = registry.createQuery(text, pageSize);
  const rows: any[] = [];
  // next() without a token would start over: the SDK keeps the token but reads it only from its callback form.
  while (query.hasMoreResults) rows.push(...(await query.next(query.continuationToken as string)).result);
  return rows;
}

describe("scheduled jobs with azure-iothub's JobClient", () => {
  let t: TestHub;
  let jobs: iothub.JobClient;
  let registry: iothub.Registry;
  const devices: DeviceClient[] = [];
  const inBuilding = (i: number) => `b43-${String(i).padStart(2, '0')}`;

  before(async () => {
    t = await startTestHub();
    jobs = createJobClient(t.connection);
    registry = createRegistry(t.connection);
    // 50 devices in building 43 (the tutorial's tag), 3 elsewhere.
    for (let i = 0; i < 53; i++) {
      const deviceId = i < 50 ? inBuilding(i) : `b44-${i}`;
      await registry.create({ deviceId });
      await registry.updateTwin(deviceId, { tags: { building: i < 50 ? '43' : '44' } }, '*');
    }
    // Three of them online with the tutorial's lockDoor; one online that handles another method only.
    for (const deviceId of [inBuilding(0), inBuilding(1), inBuilding(2), inBuilding(3)]) {
      const key: string = (await registry.get(deviceId)).responseBody.authentication!.symmetricKey!.primaryKey;
      const client = await openDevice(identityConnectionWithKey(t.connection, { deviceId }, key));
      devices.push(client);
      if (deviceId === inBuilding(3)) client.onDeviceMethod('rebootDevice', (_req, res) => res.send(200, 'rebooting'));
      else client.onDeviceMethod('lockDoor', (req, res) => res.send(200, { Response: 'Locking door', echo: req.payload }));
      await until(() => t.hub.mqtt.isSubscribed({ deviceId }, METHODS), `${deviceId} listens for methods`);
    }
  });
  after(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await t.dispose();
  });

  test("the tutorial's method job across 50 devices selected by a tag: per-device outcomes and the statistics", async () => {
    const { jobStatus: scheduled } = await jobs.scheduleDeviceMethod(
      'lock-43',
      "tags.building = '43'",
      {
        methodName: 'lockDoor',
        payload: { reason: 'test' },
        responseTimeoutInSeconds: 5,
      },
      new Date(),
      120,
    );
    assert.equal(scheduled.jobId, 'lock-43');
    assert.equal(scheduled.type, 'scheduleDeviceMethod');
    assert.ok(['queued', 'running'].includes(scheduled.status), scheduled.status);

    const job = await ended(jobs, 'lock-43');
    assert.equal(job.status, 'completed');
    assert.equal(job.queryCondition, "tags.building = '43'");
    assert.equal(job.cloudToDeviceMethod.methodName, 'lockDoor');
    assert.ok(job.endTime >= job.startTime);
    // Three answered; one never answers lockDoor (504 after its 5 s), 46 are offline.
    assert.deepEqual(job.deviceJobStatistics, { deviceCount: 50, failedCount: 47, succeededCount: 3, runningCount: 0, pendingCount: 0 });

    const rows = await queryAll(registry, "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'lock-43'");
    assert.equal(rows.length, 50);
    const byDevice = new Map(rows.map((r) => [r.deviceId, r]));
    const answered = byDevice.get(inBuilding(0));
    assert.equal(answered.jobType, 'scheduleDeviceMethod');
    assert.equal(answered.status, 'completed');
    assert.deepEqual(answered.outcome, {
      deviceMethodResponse: { status: 200, payload: { Response: 'Locking door', echo: { reason: 'test' } } },
    });
    for (const field of ['startTimeUtc', 'endTimeUtc', 'createdDateTimeUtc', 'lastUpdatedDateTimeUtc'])
      assert.equal(typeof answered[field], 'string', field);
    assert.equal(byDevice.get(inBuilding(3)).status, 'failed');
    assert.equal(byDevice.get(inBuilding(3)).error.code, 'GatewayTimeout');
    assert.equal(byDevice.get(inBuilding(10)).status, 'failed');
    assert.equal(byDevice.get(inBuilding(10)).error.code, 'DeviceNotOnline');
    assert.equal(byDevice.has('b44-50'), false);

    // IoT Hub's other documented filters: one device's jobs, and by status.
    const mine = await queryAll(
      registry,
      `SELECT * FROM devices.jobs WHERE devices.jobs.deviceId = '${inBuilding(1)}' AND devices.jobs.status = 'completed'`,
    );
    assert.deepEqual(
      mine.map((r) => r.jobId),
      ['lock-43'],
    );
  });

  test("the tutorial's twin job: desired properties on every selected twin, pushed to a connected device", async () => {
    const device = devices[0]!;
    const twin = await device.getTwin();
    const patched = new Promise<any>((resolve) => twin.on('properties.desired', (delta: any) => delta.building && resolve(delta)));
    await jobs.scheduleTwinUpdate(
      'twin-43',
      "tags.building = '43'",
      { etag: '*', properties: { desired: { building: '43', floor: 3 } } },
      new Date(),
      120,
    );
    const job = await ended(jobs, 'twin-43');
    assert.equal(job.status, 'completed');
    assert.deepEqual(job.deviceJobStatistics, { deviceCount: 50, failedCount: 0, succeededCount: 50, runningCount: 0, pendingCount: 0 });
    const pushed = await patched;
    assert.equal(pushed.floor, 3);
    const rows = await queryAll(registry, 'SELECT * FROM devices WHERE properties.desired.floor = 3');
    assert.deepEqual(
      rows.map((r) => r.deviceId).sort(),
      Array.from({ length: 50 }, (_, i) => inBuilding(i)),
    );
  });

  test('a job scheduled in the future waits, then runs on the devices selected at its start', async () => {
    // 5 s ahead: the two calls below must land before it, on a machine as busy as npm test makes it.
    const start = new Date(Date.now() + 5000);
    const { jobStatus } = await jobs.scheduleTwinUpdate('later', "deviceId = 'b44-51'", { etag: '*', tags: { visited: true } }, start, 60);
    assert.ok(['queued', 'scheduled'].includes(jobStatus.status));
    const waiting = (await jobs.getJob('later')).jobStatus;
    assert.deepEqual([waiting.status, waiting.deviceJobStatistics.deviceCount], ['scheduled', 0]);
    const job = await ended(jobs, 'later');
    assert.equal(job.status, 'completed');
    assert.equal(job.deviceJobStatistics.succeededCount, 1);
    const [row] = await queryAll(registry, "SELECT * FROM devices.jobs WHERE jobId = 'later'");
    assert.ok(Date.parse(row.createdDateTimeUtc) >= start.getTime() - 5, `${row.createdDateTimeUtc} before ${start.toISOString()}`);
    assert.equal((await registry.getTwin('b44-51')).responseBody.tags.visited, true);
  });

  test('a cancelled job ends cancelled and never runs', async () => {
    await jobs.scheduleTwinUpdate(
      'cancel-me',
      "deviceId = 'b44-52'",
      { etag: '*', tags: { cancelled: false } },
      new Date(Date.now() + 60_000),
      3600,
    );
    const { jobStatus } = await jobs.cancelJob('cancel-me');
    assert.equal(jobStatus.status, 'cancelled');
    assert.ok(jobStatus.endTime);
    // Cancelling again answers the job as it is.
    assert.equal((await jobs.cancelJob('cancel-me')).jobStatus.status, 'cancelled');
    assert.equal((await registry.getTwin('b44-52')).responseBody.tags.cancelled, undefined);
  });

  test('a job that outlives maxExecutionTimeInSeconds fails, saying why', async () => {
    // inBuilding(3) never answers lockDoor: its call takes the whole 30 s response timeout.
    await jobs.scheduleDeviceMethod(
      'too-long',
      `deviceId = '${inBuilding(3)}'`,
      { methodName: 'lockDoor', responseTimeoutInSeconds: 30 },
      new Date(),
      1,
    );
    const job = await ended(jobs, 'too-long');
    assert.equal(job.status, 'failed');
    assert.match(job.failureReason, /maxExecutionTimeInSeconds \(1 s\)/);
  });

  test('createQuery pages through jobs, filtered by type and status', async () => {
    const all: any[] = [];
    const query = jobs.createQuery(undefined, undefined, 2);
    while (query.hasMoreResults) {
      const page = (await query.next(query.continuationToken as string)).result as any[];
      assert.ok(page.length <= 2);
      all.push(...page);
    }
    assert.deepEqual(
      all.map((j) => j.jobId),
      ['lock-43', 'twin-43', 'later', 'cancel-me', 'too-long'],
    );
    const twinJobs = (await jobs.createQuery('scheduleUpdateTwin', 'completed' as any).next()).result as any[];
    assert.deepEqual(
      twinJobs.map((j) => j.jobId),
      ['twin-43', 'later'],
    );
    assert.ok(twinJobs.every((j) => j.deviceJobStatistics));
  });

  test("IoT Hub's errors: an unknown job, an id in use, a bad job id, a bad condition", async () => {
    assert.deepEqual(await failure(jobs.getJob('nosuch')), { status: 404, errorCode: 404002, code: 'JobNotFound' });
    assert.deepEqual(await failure(jobs.cancelJob('nosuch')), { status: 404, errorCode: 404002, code: 'JobNotFound' });
    const again = jobs.scheduleTwinUpdate('twin-43', "deviceId = 'x'", { tags: { a: 1 } });
    assert.deepEqual(await failure(again), { status: 409, errorCode: 409000, code: 'JobAlreadyExists' });
    for (const id of ['has space', 'under_score', 'x'.repeat(65)]) {
      assert.equal((await failure(jobs.scheduleTwinUpdate(id, "deviceId = 'x'", { tags: { a: 1 } }))).errorCode, 400004, id);
    }
    assert.deepEqual(await failure(jobs.scheduleTwinUpdate('bad-query', 'tags.x = ', { tags: { a: 1 } })), {
      status: 400,
      errorCode: 400020,
      code: 'SqlQueryInvalid',
    });
    assert.deepEqual(await failure(jobs.scheduleTwinUpdate('bad-group', 'x = 1) GROUP BY deviceId, (y', { tags: { a: 1 } })), {
      status: 400,
      errorCode: 400020,
      code: 'SqlQueryInvalid',
    });
    assert.equal((await failure(jobs.scheduleTwinUpdate('no-write', "deviceId = 'x'", { etag: '*' }))).errorCode, 400004);
    // The REST API's own bounds, which the SDK does not check.
    const auth = createSasToken(t.hub.hostName, t.hub.auth.policy('iothubowner')!.primaryKey, 'iothubowner', 60);
    const bad = await restCall(
      t,
      'PUT',
      '/jobs/v2/bad-time?api-version=2021-04-12',
      auth,
      JSON.stringify({
        type: 'scheduleUpdateTwin',
        queryCondition: "deviceId = 'x'",
        updateTwin: { tags: { a: 1 } },
        startTime: 'tomorrow',
      }),
    );
    assert.equal(bad.status, 400);
    assert.match(bad.body.Message, /startTime/);
    const unknownType = await restCall(t, 'GET', '/jobs/v2/query?jobType=export&api-version=2021-04-12', auth);
    assert.equal(unknownType.status, 400);
  });
});

describe('scheduled jobs: limits and restarts', () => {
  test('with --throttle s1 one job may be active at a time (429 ThrottlingMaxActiveJobCountExceeded)', async () => {
    const t = await startTestHub({ throttle: 's1' });
    try {
      const jobs = createJobClient(t.connection);
      await jobs.scheduleTwinUpdate('first', "deviceId = 'none'", { tags: { a: 1 } }, new Date(Date.now() + 60_000), 3600);
      const second = await failure(jobs.scheduleTwinUpdate('second', "deviceId = 'none'", { tags: { a: 1 } }));
      assert.deepEqual(second, { status: 429, errorCode: 429004, code: 'ThrottlingMaxActiveJobCountExceeded' });
      await jobs.cancelJob('first');
      await jobs.scheduleTwinUpdate('second', "deviceId = 'none'", { tags: { a: 1 } });
      assert.equal((await ended(jobs, 'second')).status, 'completed');
    } finally {
      await t.dispose();
    }
  });

  test("with --throttle s1, job operations count against IoT Hub's jobs throttle (100 a minute, then 429)", async () => {
    const t = await startTestHub({ throttle: new Throttle('s1', () => 0) }); // a clock that stands still: no refill
    try {
      const jobs = createJobClient(t.connection);
      for (let i = 0; i < 100; i++) assert.equal((await failure(jobs.getJob('nosuch'))).status, 404);
      assert.deepEqual(await failure(jobs.getJob('nosuch')), { status: 429, errorCode: 429001, code: 'ThrottlingException' });
    } finally {
      await t.dispose();
    }
  });

  test('a restarted hub runs the jobs scheduled before it stopped, and ends calls it left in flight as interrupted', onDisk(), async () => {
    let t = await startTestHub({ dataDir: tempDir() }); // restarted on the same data dir
    const dataDir = t.dataDir;
    const device = await openDevice(await registerIdentity(t, 'silent'));
    try {
      await createRegistry(t.connection).create({ deviceId: 'later-dev' });
      let jobs = createJobClient(t.connection);
      // A call in flight when the hub stops: the device never answers.
      device.onDeviceMethod('lockDoor', () => undefined);
      await until(() => t.hub.mqtt.isSubscribed({ deviceId: 'silent' }, METHODS), 'silent listens for methods');
      await jobs.scheduleDeviceMethod(
        'in-flight',
        "deviceId = 'silent'",
        { methodName: 'lockDoor', responseTimeoutInSeconds: 300 },
        new Date(),
        3600,
      );
      await until(() => t.hub.methods.inFlight() === 1, "the job's call is in flight");
      // A job that starts after the restart.
      await jobs.scheduleTwinUpdate(
        'after-restart',
        "deviceId = 'later-dev'",
        { tags: { restarted: true } },
        new Date(Date.now() + 1500),
        3600,
      );
      // Closed first: a device client whose hub goes away keeps retrying after its close (the SDK's timers).
      await device.close();
      assert.equal(t.hub.methods.inFlight(), 1, 'the call is still in flight');
      await t.stop();

      t = await startTestHub({ dataDir });
      jobs = createJobClient(t.connection);
      const interrupted = await ended(jobs, 'in-flight');
      assert.equal(interrupted.status, 'completed');
      assert.equal(interrupted.deviceJobStatistics.failedCount, 1);
      const [row] = await queryAll(createRegistry(t.connection), "SELECT * FROM devices.jobs WHERE jobId = 'in-flight'");
      assert.equal(row.error.code, 'JobInterrupted');
      const later = await ended(jobs, 'after-restart');
      assert.equal(later.status, 'completed');
      assert.equal((await createRegistry(t.connection).getTwin('later-dev')).responseBody.tags.restarted, true);
    } finally {
      await device.close();
      await t.dispose();
    }
  });

  test('kill -9 mid-job: the restarted hub ends the interrupted call and runs what was still to come', onDisk(), async () => {
    const home = tempDir();
    const dataDir = join(home, 'hub');
    const cli = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--data-dir', dataDir, '--json', '--show-secrets'], {
      IOTHUB_TUT_HOME: home,
    });
    const started = await cli.waitFor((l) => l.event === 'started');
    const hub = {
      process: cli,
      connection: parseConnection('service', started.serviceConnectionString, {
        ca: readFileSync(started.caFile, 'utf8'),
        port: started.port,
      }),
    };
    let restarted: TestHub | undefined;
    let device: DeviceClient | undefined;
    try {
      const registry = createRegistry(hub.connection);
      const key: string = (await registry.create({ deviceId: 'silent' })).responseBody.authentication!.symmetricKey!.primaryKey;
      await registry.create({ deviceId: 'after-kill' });
      device = await openDevice(identityConnectionWithKey(hub.connection, { deviceId: 'silent' }, key));
      const answered = new Promise<void>((resolve) => device!.onDeviceMethod('lockDoor', () => resolve()));
      let jobs = createJobClient(hub.connection);
      await jobs.scheduleDeviceMethod(
        'killed',
        "deviceId = 'silent'",
        { methodName: 'lockDoor', responseTimeoutInSeconds: 300 },
        new Date(),
        3600,
      );
      await jobs.scheduleTwinUpdate(
        'after-kill',
        "deviceId = 'after-kill'",
        { tags: { survived: true } },
        new Date(Date.now() + 1500),
        3600,
      );
      await answered; // the call reached the device: the job is running, its one device in flight
      await device.close(); // before its hub goes away (see above)
      device = undefined;
      hub.process.child.kill('SIGKILL');
      await hub.process.exit();

      // The data dir of the killed hub, opened by a hub in this process (`hub start` after a kill -9 is hub-lifecycle's).
      restarted = await startTestHub({ dataDir });
      jobs = createJobClient(restarted.connection);
      const killed = await ended(jobs, 'killed');
      assert.equal(killed.status, 'completed');
      const [row] = await queryAll(createRegistry(restarted.connection), "SELECT * FROM devices.jobs WHERE jobId = 'killed'");
      assert.equal(row.status, 'failed');
      assert.equal(row.error.code, 'JobInterrupted');
      assert.equal((await ended(jobs, 'after-kill')).status, 'completed');
      assert.equal((await createRegistry(restarted.connection).getTwin('after-kill')).responseBody.tags.survived, true);
    } finally {
      await device?.close();
      if (restarted) await restarted.stop();
      else if (!hub.process.child.killed) assert.equal(await hub.process.stop(), 0);
      rmSync(home, { recursive: true, force: true });
    }
  });
});
