import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRegistry } from '../../src/clients/service-clients.js';
import { createSasToken } from '../../src/hub/auth/sas-token.js';
import { onDisk, restCall, startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { until } from '../helpers/devices.js';
import { createServer, type AddressInfo } from 'node:net';

const JOB_TIMEOUT_MS = 60_000;

/** Polls a job (bounded) until it ends, as a service app would. */
async function finished(registry: ReturnType<typeof createRegistry>, jobId: string): Promise<any> {
  const deadline = Date.now() + JOB_TIMEOUT_MS;
  for (;;) {
    const job: any = await registry.getJob(jobId);
    if (['completed', 'failed', 'cancelled'].includes(job.status)) return job;
    if (Date.now() > deadline) assert.fail(`job ${jobId} still ${job.status} after ${JOB_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const lines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));

describe('import and export of identities through blob storage (Azurite, @azure/storage-blob)', () => {
  let azurite: Azurite;
  let source: TestHub;
  let registry: ReturnType<typeof createRegistry>;
  before(async () => {
    azurite = await startAzurite();
    source = await startTestHub();
    registry = createRegistry(source.connection);
    await registry.create({ deviceId: 'exp-1' });
    await registry.create({ deviceId: 'exp-2', status: 'disabled', statusReason: 'retired', capabilities: { iotEdge: true } } as any);
    await registry.addModule({ deviceId: 'exp-2', moduleId: 'filter' });
    await registry.updateTwin(
      'exp-1',
      { tags: { site: 'lab', floor: 3 }, properties: { desired: { interval: 10, mode: { fast: true } } } },
      '*',
    );
    await registry.updateModuleTwin('exp-2', 'filter', { tags: { kind: 'edge' }, properties: { desired: { threshold: 5 } } }, '*');
  });
  after(async () => {
    await source?.dispose();
    await azurite?.stop();
  });

  test('export writes devices.txt; importing it into a fresh hub gives the same identities (keys, status, tags, desired)', async () => {
    const { client, sasUri } = await azurite.container('roundtrip');
    const created: any = await registry.exportDevicesToBlob(sasUri, false);
    assert.equal(created.type, 'export');
    assert.ok(['enqueued', 'running', 'completed'].includes(created.status));
    const job = await finished(registry, created.jobId);
    assert.equal(job.status, 'completed', job.failureReason);
    assert.equal(job.progress, 100);

    const exported = lines((await client.getBlobClient('devices.txt').downloadToBuffer()).toString());
    assert.deepEqual(
      exported.map((l) => `${l.id}${l.moduleId ? '/' + l.moduleId : ''}`),
      ['exp-1', 'exp-2', 'exp-2/filter'],
    );
    const one = exported[0];
    const device = (await registry.get('exp-1')).responseBody;
    assert.equal(one.authentication.symmetricKey.primaryKey, device.authentication!.symmetricKey!.primaryKey);
    assert.deepEqual(one.tags, { site: 'lab', floor: 3 });
    assert.equal(one.properties.desired.interval, 10);

    const target = await startTestHub();
    try {
      const fresh = createRegistry(target.connection);
      const imported = await finished(fresh, ((await fresh.importDevicesFromBlob(sasUri, sasUri)) as any).jobId);
      assert.equal(imported.status, 'completed', imported.failureReason);
      assert.equal((await client.getBlobClient('importErrors.log').downloadToBuffer()).length, 0, 'an empty importErrors.log: no errors');

      for (const id of ['exp-1', 'exp-2']) {
        const before = (await registry.get(id)).responseBody;
        const after = (await fresh.get(id)).responseBody;
        assert.deepEqual(after.authentication, before.authentication, `${id}: the same keys`);
        assert.equal(after.status, before.status);
        assert.equal(after.statusReason, before.statusReason);
        assert.deepEqual(after.capabilities, before.capabilities);
        const [was, is] = [(await registry.getTwin(id)).responseBody as any, (await fresh.getTwin(id)).responseBody as any];
        assert.deepEqual(is.tags, was.tags);
        const { $metadata: _a, $version: _b, ...desiredWas } = was.properties.desired;
        const { $metadata: _c, $version: _d, ...desiredIs } = is.properties.desired;
        assert.deepEqual(desiredIs, desiredWas);
      }
      const module = (await fresh.getModule('exp-2', 'filter')).responseBody as any;
      assert.deepEqual(module.authentication, ((await registry.getModule('exp-2', 'filter')).responseBody as any).authentication);
      assert.equal(((await fresh.getModuleTwin('exp-2', 'filter')).responseBody as any).properties.desired.threshold, 5);
    } finally {
      await target.dispose();
    }
  });

  test('excludeKeysInExport writes the keys as null', async () => {
    const { client, sasUri } = await azurite.container('nokeys');
    const job = await finished(registry, ((await registry.exportDevicesToBlob(sasUri, true)) as any).jobId);
    assert.equal(job.status, 'completed', job.failureReason);
    assert.equal(job.excludeKeysInExport, true);
    for (const line of lines((await client.getBlobClient('devices.txt').downloadToBuffer()).toString())) {
      assert.deepEqual(line.authentication.symmetricKey, { primaryKey: null, secondaryKey: null });
    }
  });

  test("import applies each line with its importMode, writes the others' errors to importErrors.log and ends failed with ImportWarningExistsError", async () => {
    const { client, sasUri } = await azurite.container('modes');
    const key = Buffer.alloc(32, 7).toString('base64');
    const file = [
      { id: 'imp-new', importMode: 'create', authentication: { symmetricKey: { primaryKey: key, secondaryKey: key } }, tags: { batch: 1 } },
      { id: 'exp-1', importMode: 'create' }, // exists: 409 DeviceAlreadyExists
      { id: 'no-such', importMode: 'delete' }, // 404 DeviceNotFound
      { id: 'exp-2', importMode: 'updateTwin', tags: { site: 'moved' } },
      { id: 'exp-2', importMode: 'updateIfMatchETag', eTag: 'stale', status: 'enabled' }, // 412
    ].map((line) => JSON.stringify(line));
    file.splice(2, 0, '{"id": "broken"'); // not JSON: 400012
    await client.getBlockBlobClient('devices.txt').upload(file.join('\n'), Buffer.byteLength(file.join('\n')));

    const job = await finished(registry, ((await registry.importDevicesFromBlob(sasUri, sasUri)) as any).jobId);
    assert.equal(job.status, 'failed');
    assert.match(job.failureReason, /^ImportWarningExistsError: 4 of 6 lines/);
    const errors = lines((await client.getBlobClient('importErrors.log').downloadToBuffer()).toString());
    assert.deepEqual(
      errors.map((e) => e.errorCode),
      [409001, 400012, 404001, 412002],
    );
    assert.match(errors[1].errorStatus, /Invalid device format in line/);

    const created = (await registry.get('imp-new')).responseBody;
    assert.equal(created.authentication!.symmetricKey!.primaryKey, key);
    assert.deepEqual(((await registry.getTwin('imp-new')).responseBody as any).tags, { batch: 1 });
    assert.deepEqual(((await registry.getTwin('exp-2')).responseBody as any).tags, { site: 'moved' });
    assert.equal((await registry.get('exp-2')).responseBody.status, 'disabled', 'the stale-etag line changed nothing');
    await registry.delete('imp-new');
  });

  test('a container the SAS does not let the hub write fails the job with the storage error, without the SAS token', async () => {
    const { sasUri } = await azurite.container('readonly', 'rl');
    const job = await finished(registry, ((await registry.exportDevicesToBlob(sasUri, false)) as any).jobId);
    assert.equal(job.status, 'failed');
    assert.match(job.failureReason, /refused .*\/readonly\/devices\.txt: 403/);
    assert.doesNotMatch(job.failureReason, /sig=/);
    const missing = await finished(
      registry,
      ((await registry.importDevicesFromBlob(sasUri.replace('/readonly?', '/nowhere?'), sasUri)) as any).jobId,
    );
    assert.equal(missing.status, 'failed');
    assert.match(missing.failureReason, /nowhere\/devices\.txt: (403|404)/);
  });

  test('jobs are listed, unknown ones are 404 JobNotFound, bad requests are 400, and an ended job cancels to itself', async () => {
    const listed: any = (await registry.listJobs()).responseBody;
    assert.ok(listed.length >= 4);
    assert.ok(listed.every((j: any) => ['export', 'import'].includes(j.type)));
    const token = createSasToken('localhost', source.hub.auth.policy('iothubowner')!.primaryKey, 'iothubowner', 3600);
    const unknown = await restCall(source, 'GET', '/jobs/no-such-job?api-version=2021-04-12', token);
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.Message, /^ErrorCode:JobNotFound;/);
    const bad = await restCall(
      source,
      'POST',
      '/jobs/create?api-version=2021-04-12',
      token,
      JSON.stringify({ type: 'export', outputBlobContainerUri: 'not a uri' }),
    );
    assert.equal(bad.status, 400);
    const identity = await restCall(
      source,
      'POST',
      '/jobs/create?api-version=2021-04-12',
      token,
      JSON.stringify({
        type: 'export',
        outputBlobContainerUri: 'https://example.blob.core.windows.net/c',
        storageAuthenticationType: 'identityBased',
      }),
    );
    assert.equal(identity.status, 400);
    assert.match(identity.body.Message, /no managed identity/);
    const done = listed[0];
    const cancelled: any = await registry.cancelJob(done.jobId);
    assert.equal(cancelled.status, done.status);
  });

  test('a job enqueued behind another can be cancelled; jobs survive a restart', onDisk(), async () => {
    const dataDir = tempDir();
    let t = await startTestHub({ dataDir });
    try {
      let registry = createRegistry(t.connection);
      for (let i = 0; i < 5; i++) await registry.create({ deviceId: `queued-${i}` });
      const { sasUri } = await azurite.container('queue');
      const done: any = await registry.exportDevicesToBlob(sasUri, false);
      assert.equal((await finished(registry, done.jobId)).status, 'completed');

      // A storage account that accepts connections and never answers holds a job running, and the next waits behind it.
      const silent = createServer(() => undefined);
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const stuckUri = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/devstoreaccount1/c?sv=2021-01-01&sig=secret`;
      const stuck: any = await registry.exportDevicesToBlob(stuckUri, false);
      await until(() => t.hub.importExport.get(stuck.jobId).status === 'running', 'the job runs');
      const queued: any = await registry.exportDevicesToBlob(sasUri, false);
      assert.equal(queued.status, 'enqueued');
      assert.equal(((await registry.cancelJob(queued.jobId)) as any).status, 'cancelled');

      // Stopping the hub ends the running job; after the restart, each job is as it was left.
      await t.stop();
      silent.close();
      t = await startTestHub({ dataDir });
      registry = createRegistry(t.connection);
      const after: any = await registry.getJob(done.jobId);
      assert.equal(after.status, 'completed');
      assert.equal(after.type, 'export');
      const ended: any = await registry.getJob(stuck.jobId);
      assert.equal(ended.status, 'failed');
      assert.match(ended.failureReason, /hub stopped before the job ended/);
      assert.equal(((await registry.getJob(queued.jobId)) as any).status, 'cancelled', 'a cancelled job never runs');
    } finally {
      await t.dispose();
    }
  });
});
