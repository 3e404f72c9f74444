import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type Db } from '../../src/hub/store/database.js';
import { IdentityStore } from '../../src/hub/store/identity-store.js';
import { Registry, type IdentityKey } from '../../src/hub/registry/registry.js';

// The registry's two kinds of followers: its dependents (twin, session) are called inside its
// transaction and commit or roll back with the identity; its typed events come after the commit,
// and never for a change that rolled back.

function registryWith(dependents: { created?: (key: IdentityKey) => void; deleted?: (key: IdentityKey) => void } = {}) {
  const db = openDatabase(':memory:');
  const store = new IdentityStore(db);
  const calls: string[] = [];
  const registry = new Registry(store, {
    created: (key) => {
      calls.push(`dependent created ${key.deviceId}${key.moduleId ? '/' + key.moduleId : ''} inTransaction=${db.inTransaction}`);
      dependents.created?.(key);
    },
    deleted: (key) => {
      calls.push(`dependent deleted ${key.deviceId}${key.moduleId ? '/' + key.moduleId : ''} inTransaction=${db.inTransaction}`);
      dependents.deleted?.(key);
    },
  });
  for (const event of ['created', 'deleted', 'disabled', 'rekeyed'] as const) {
    registry.on(event, (key) => {
      const visible = registry.find(key.deviceId, key.moduleId) !== undefined;
      calls.push(
        `event ${event} ${key.deviceId}${key.moduleId ? '/' + key.moduleId : ''} inTransaction=${db.inTransaction} visible=${visible}`,
      );
    });
  }
  return { db, registry, calls };
}

describe('registry: dependents inside the transaction, events after the commit', () => {
  test('create, disable, rekey, delete: the dependent is called inside, the event follows the commit', () => {
    const { registry, calls } = registryWith();
    registry.createOrUpdate({ deviceId: 'd' }, {}, undefined);
    registry.createOrUpdate({ deviceId: 'd', moduleId: 'm' }, {}, undefined);
    registry.createOrUpdate({ deviceId: 'd' }, { status: 'disabled' }, '*');
    registry.createOrUpdate({ deviceId: 'd', moduleId: 'm' }, { primaryKey: Buffer.alloc(32, 3).toString('base64') }, '*');
    registry.delete({ deviceId: 'd' }, '*');
    assert.deepEqual(calls, [
      'dependent created d inTransaction=true',
      'event created d inTransaction=false visible=true',
      'dependent created d/m inTransaction=true',
      'event created d/m inTransaction=false visible=true',
      'event disabled d inTransaction=false visible=true',
      'event rekeyed d/m inTransaction=false visible=true',
      // Modules before their device: a device's cascade (its twin) takes its modules' along.
      'dependent deleted d/m inTransaction=true',
      'dependent deleted d inTransaction=true',
      'event deleted d inTransaction=false visible=false',
      'event deleted d/m inTransaction=false visible=false',
    ]);
  });

  test('a dependent that fails rolls the identity back, and nothing is announced', () => {
    const { registry, calls } = registryWith({
      created: () => {
        throw new Error('the twin could not be written');
      },
    });
    assert.throws(() => registry.createOrUpdate({ deviceId: 'd' }, {}, undefined), /the twin could not be written/);
    assert.equal(registry.find('d'), undefined);
    assert.deepEqual(calls, ['dependent created d inTransaction=true']);
  });

  test('inside an outer transaction, events wait for its commit, and are dropped when it rolls back', () => {
    const { db, registry, calls } = registryWith();
    assert.throws(() =>
      db.transaction(() => {
        registry.createOrUpdate({ deviceId: 'gone' }, {}, undefined);
        throw new Error('the outer change fails');
      }),
    );
    assert.equal(registry.find('gone'), undefined);
    assert.deepEqual(calls, ['dependent created gone inTransaction=true']);

    calls.length = 0;
    db.transaction(() => {
      registry.createOrUpdate({ deviceId: 'kept' }, {}, undefined);
      assert.deepEqual(calls, ['dependent created kept inTransaction=true'], 'no event before the outer commit');
    });
    assert.deepEqual(calls, ['dependent created kept inTransaction=true', 'event created kept inTransaction=false visible=true']);
  });
});

describe('Db.afterCommit', () => {
  const opened = (): Db => openDatabase(':memory:');

  test('runs at once outside a transaction, after the outermost commit inside one, never after a rollback', () => {
    const db = opened();
    const ran: string[] = [];
    db.afterCommit(() => ran.push('outside'));
    assert.deepEqual(ran, ['outside']);
    db.transaction(() => {
      db.afterCommit(() => ran.push('outer'));
      // A savepoint undone alone drops only what it queued.
      assert.throws(() =>
        db.transaction(() => {
          db.afterCommit(() => ran.push('undone'));
          throw new Error('inner');
        }),
      );
      db.transaction(() => db.afterCommit(() => ran.push('inner kept')));
      assert.deepEqual(ran, ['outside']);
    });
    assert.deepEqual(ran, ['outside', 'outer', 'inner kept']);
    assert.throws(() =>
      db.transaction(() => {
        db.afterCommit(() => ran.push('rolled back'));
        throw new Error('outer');
      }),
    );
    db.transaction(() => undefined);
    assert.deepEqual(ran, ['outside', 'outer', 'inner kept']);
  });
});
