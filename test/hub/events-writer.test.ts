import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { EventLog, type D2CMessage } from '../../src/hub/events/event-log.js';
import { openDatabase } from '../../src/hub/store/database.js';
import { EventStore } from '../../src/hub/store/event-store.js';
import { telemetry } from '../helpers/events.js';
import { startTestHub, tempDir } from '../helpers/hub.js';

// The event log's commits: on a worker thread for a database file, in-thread for ':memory:'. Both
// must acknowledge a batch only once it is committed and nothing of a batch that failed.

/** How many times this process has `path` open (Linux: /proc/self/fd). */
function openCopies(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // closed while we looked
    }
  }).length;
}

// A skip reason off Linux (node:test skips a test whose `skip` is a string).
const skipUnlessLinux = process.platform === 'linux' ? false : 'counts open files in /proc/self/fd';

describe('event log commits', () => {
  for (const where of ['a database file (worker thread)', 'memory (in-thread)']) {
    test(`a failed commit acknowledges nothing of its batch, and the log goes on after it: ${where}`, async () => {
      const dir = tempDir('iothub-events-');
      const db = openDatabase(where.startsWith('memory') ? ':memory:' : join(dir, 'hub.db'));
      const log = new EventLog(new EventStore(db));
      try {
        const first = await log.append(telemetry('steady', 0));
        // A real SQLite failure inside the writer's transaction, on one message of the batch.
        db.exec(`CREATE TRIGGER refuse_poison BEFORE INSERT ON events WHEN NEW.message_id = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END`);
        const announced: number[] = [];
        log.on('appended', (partition) => announced.push(partition));
        // Published in one turn: one batch, one transaction.
        const outcomes = await Promise.allSettled([
          log.append(telemetry('steady', 1)),
          log.appendMany([telemetry('other', 2), telemetry('third', 3, { messageId: 'poison' })]),
          log.append(telemetry('steady', 4)),
        ]);
        for (const outcome of outcomes) {
          assert.equal(outcome.status, 'rejected');
          assert.match(String((outcome as PromiseRejectedResult).reason), /poisoned/);
        }
        assert.deepEqual(announced, []);
        for (let p = 0; p < log.partitionCount; p++) {
          assert.equal(log.read(p, 0, 10).length, p === first.partition ? 1 : 0, `partition ${p}`);
        }

        db.exec('DROP TRIGGER refuse_poison');
        const next = await log.append(telemetry('steady', 5));
        assert.equal(next.sequenceNumber, first.sequenceNumber + 1, 'no sequence number lost to the failed batch');
        assert.ok(Number(next.offset) > Number(first.offset));
        assert.deepEqual(
          log.read(first.partition, 0, 10).map((e) => e.systemProperties.messageId),
          ['msg-0', 'msg-5'],
        );
        assert.deepEqual(announced, [first.partition]);
      } finally {
        await log.close();
        db.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  test('what the writer thread stores reads back the same: unicode, missing fields, large and empty bodies', async () => {
    const dir = tempDir('iothub-events-');
    const path = join(dir, 'hub.db');
    const db = openDatabase(path);
    const log = new EventLog(new EventStore(db), { partitionCount: 1 });
    try {
      const messages: D2CMessage[] = [
        { deviceId: 'plain', body: Buffer.from('{"t":1}'), properties: {} },
        {
          deviceId: 'капибара',
          moduleId: 'モジュール',
          body: Buffer.from('温度 🌡'),
          messageId: 'id-é',
          correlationId: '相关',
          contentType: 'application/json',
          contentEncoding: 'utf-8',
          userId: 'ユーザー',
          properties: { ключ: 'значение 🌡', empty: '' },
        },
        { deviceId: 'large', body: Buffer.alloc(256 * 1024, 7), properties: { n: 'x'.repeat(5000) } }, // beyond the packer's first buffer
        { deviceId: 'empty', body: Buffer.alloc(0), properties: {} },
      ];
      const appended = await log.appendMany(messages);
      const reopened = new EventStore(openDatabase(path)); // reads the table, not the in-memory tail
      const read = reopened.read(0, 0, 10);
      assert.equal(read.length, messages.length);
      for (const [i, event] of read.entries()) {
        const { partition, body, systemProperties, annotations, properties, sequenceNumber, offset, enqueuedTimeMs } = appended[i]!;
        assert.deepEqual(
          event,
          { partition, body, systemProperties, annotations, properties, sequenceNumber, offset, enqueuedTimeMs },
          `message ${i}`,
        );
      }
      assert.ok(
        read.every((e, i) => i === 0 || Number(e.offset) > Number(read[i - 1]!.offset)),
        'offsets grow',
      );
    } finally {
      await log.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('appends that arrive while a commit is in flight go into the next one, in order', async () => {
    const dir = tempDir('iothub-events-');
    const db = openDatabase(join(dir, 'hub.db'));
    const log = new EventLog(new EventStore(db));
    try {
      const appends = [];
      // 20 turns of 10 appends: later turns land while earlier commits are on the worker thread.
      for (let turn = 0; turn < 20; turn++) {
        for (let i = 0; i < 10; i++) appends.push(log.append(telemetry('ordered', turn * 10 + i)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const stored = await Promise.all(appends);
      assert.deepEqual(
        stored.map((e) => e.sequenceNumber),
        stored.map((_, i) => i),
      );
      const read = log.read(stored[0]!.partition, 0, 500);
      assert.deepEqual(
        read.map((e) => e.properties.index),
        stored.map((_, i) => String(i)),
      );
    } finally {
      await log.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the writer thread starts with the first append and LocalHub.stop() ends it', { skip: skipUnlessLinux }, async () => {
    const t = await startTestHub();
    const path = join(t.dataDir, 'hub.db');
    try {
      assert.equal(openCopies(path), 1, "the hub's own connection only");
      await t.hub.eventLog.append(telemetry('writer', 0));
      assert.equal(openCopies(path), 2, "and the writer thread's");
      await t.stop();
      assert.equal(openCopies(path), 0, 'nothing left open');
      await assert.rejects(t.hub.eventLog.append(telemetry('writer', 1)), /closed/);
    } finally {
      await t.dispose();
    }
  });

  test('writes on the main connection (registry, retention) do not fail while the writer thread commits', async () => {
    const t = await startTestHub();
    try {
      let appending = true;
      const appends = (async () => {
        while (appending) {
          await Promise.all(Array.from({ length: 50 }, (_, i) => t.hub.eventLog.append(telemetry(`busy-${i}`, i))));
        }
      })();
      const failures: string[] = [];
      for (let i = 0; i < 1000; i++) {
        try {
          t.hub.registry.createOrUpdate({ deviceId: `concurrent-${i}` }, {}, undefined); // reads, then writes
          if (i % 100 === 0) t.hub.eventLog.prune();
        } catch (err) {
          failures.push(String(err));
        }
        if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve)); // let commits come back
      }
      appending = false;
      await appends;
      assert.deepEqual(failures.slice(0, 3), []);
    } finally {
      await t.dispose();
    }
  });

  test('an idle writer thread does not keep the process alive', () => {
    const dir = tempDir('iothub-events-');
    try {
      const imports = (module: string) => JSON.stringify(new URL(`../../src/hub/${module}`, import.meta.url).href);
      // Appends and then neither closes nor exits: the process must end by itself.
      const script = `
        const { openDatabase } = await import(${imports('store/database.js')});
        const { EventStore } = await import(${imports('store/event-store.js')});
        const { EventLog } = await import(${imports('events/event-log.js')});
        const log = new EventLog(new EventStore(openDatabase(${JSON.stringify(join(dir, 'hub.db'))})));
        await log.append({ deviceId: 'idle', body: Buffer.from('idle'), properties: {} });
        console.log('appended');
      `;
      const file = join(dir, 'append-and-leave.mjs');
      writeFileSync(file, script);
      const child = spawnSync(process.execPath, [file], { timeout: 20_000, encoding: 'utf8' });
      assert.equal(child.signal, null, 'it ended by itself, before the timeout');
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout.trim(), 'appended');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
