import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRegistry } from '../../src/clients/service-clients.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';
import { registerIdentity } from '../helpers/devices.js';

describe('twin queries over HTTPS with azure-iothub Registry.createQuery', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub();
    for (const id of ['q-1', 'q-2', 'q-3', "q-'quote"]) await registerIdentity(t, id);
    await registerIdentity(t, 'q-host', 'q-mod');
  });
  after(() => t.dispose());

  test('SELECT * pages through every device twin with continuation tokens', async () => {
    const query = createRegistry(t.connection).createQuery('SELECT * FROM devices', 2);
    const seen: string[] = [];
    let pages = 0;
    while (query.hasMoreResults) {
      const { result } = await query.nextAsTwin();
      assert.ok(result.length <= 2);
      seen.push(...result.map((twin) => twin.deviceId));
      if (++pages > 10) throw new Error('the query never ends');
    }
    assert.deepEqual(seen.sort(), ['q-1', 'q-2', 'q-3', "q-'quote", 'q-host'].sort());
    assert.ok(pages >= 3);
  });

  test('WHERE on deviceId with an escaped quote, module twins, and projections', async () => {
    const registry = createRegistry(t.connection);
    const quoted = (await registry.createQuery("SELECT * FROM devices WHERE deviceId = 'q-\\'quote'").nextAsTwin()).result;
    assert.deepEqual(
      quoted.map((twin) => twin.deviceId),
      ["q-'quote"],
    );
    const modules = (await registry.createQuery("SELECT * FROM devices.modules WHERE moduleId = 'q-mod'").nextAsTwin()).result;
    assert.deepEqual(
      modules.map((twin) => [twin.deviceId, twin.moduleId]),
      [['q-host', 'q-mod']],
    );
    const { result: rows, message } = await registry.createQuery("SELECT deviceId FROM devices WHERE deviceId = 'q-2'").next();
    assert.deepEqual(rows, [{ deviceId: 'q-2' }]);
    assert.equal(message.headers['x-ms-item-type'], 'Raw');
  });

  test('a malformed query is 400 ArgumentError', async () => {
    await assert.rejects(
      createRegistry(t.connection).createQuery('SELECT FROM nowhere').next(),
      (err: Error) => err.constructor.name === 'ArgumentError',
    );
  });
});
