// The store alone, in this process: CPU per operation of the SQLite layer the hub runs on (node:sqlite),
// so that a change of the store (or of Node) shows in figures that load on the box moves little.
// CPU time counts every thread of this process, the event writer's included.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/hub/store/database.js';
import { EventStore, type NewEvent } from '../../src/hub/store/event-store.js';
import { TwinStore } from '../../src/hub/store/twin-store.js';
import { IdentityStore } from '../../src/hub/store/identity-store.js';
import type { Row } from '../lib/report.js';

export interface StoreOptions {
  events: number;
  batch: number;
  twinUpdates: number;
  identityReads: number;
}

/** CPU µs (user + system, all threads) that `work` takes, divided by `count`. */
async function cpuPer(count: number, work: () => unknown): Promise<number> {
  const start = process.cpuUsage();
  await work();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / count;
}

export async function storeSuite(options: StoreOptions): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'iothub-tut-bench-store-'));
  const db = openDatabase(join(dir, 'hub.db'));
  try {
    const events = new EventStore(db);
    const partitions = 4;
    events.ensureHub(partitions, Date.now());
    const annotations = { 'iothub-connection-device-id': 'bench', 'iothub-connection-auth-generation-id': '638000000000000000' };
    const body = Buffer.alloc(200, 'x');
    const append = await cpuPer(options.events, async () => {
      for (let i = 0; i < options.events; i += options.batch) {
        const batch: NewEvent[] = [];
        for (let j = i; j < i + options.batch; j++) {
          batch.push({
            partition: j % partitions,
            body,
            annotations,
            properties: { Property: `PropMsg_${j}` },
            systemProperties: {
              messageId: `message_${j}`,
              correlationId: `correlation_${j}`,
              contentType: 'application/json',
              contentEncoding: 'utf-8',
            },
          });
        }
        await events.append(batch, Date.now());
      }
    });
    const read = await cpuPer(options.events, () => {
      for (let p = 0; p < partitions; p++) for (let from = 0; events.read(p, from, 500).length === 500; from += 500);
    });
    const positions = 1000;
    const position = await cpuPer(positions, () => {
      for (let k = 0; k < positions; k++) events.firstSequenceAfterTime(k % partitions, Date.now() - 100 * (k % 10), true);
    });
    await events.close();

    const twins = new TwinStore(db);
    const identities = new IdentityStore(db);
    const devices = 100;
    for (let i = 0; i < devices; i++) {
      twins.put(
        { deviceId: `d${i}` },
        {
          tags: {},
          desired: {},
          reported: {},
          desiredMetadata: {},
          reportedMetadata: {},
          desiredVersion: 1,
          reportedVersion: 1,
          version: 1,
          etag: 'AAAAAAAAAAE=',
        },
      );
      identities.put({
        deviceId: `d${i}`,
        moduleId: '',
        generationId: 'g',
        etagCounter: 1,
        status: 'enabled',
        statusReason: null,
        statusUpdatedTime: '',
        primaryKey: 'k',
        secondaryKey: 'k',
        managedBy: null,
        connectionState: 'Disconnected',
        connectionStateUpdatedTime: '',
        lastActivityTime: '',
        capabilities: { iotEdge: false },
        createdTime: '',
      });
    }
    const twinUpdate = await cpuPer(options.twinUpdates, () => {
      for (let i = 0; i < options.twinUpdates; i++) {
        twins.update({ deviceId: `d${i % devices}` }, (s) => ({ ...s, desired: { telemetryInterval: i }, version: s.version + 1 }));
      }
    });
    const identityRead = await cpuPer(options.identityReads, () => {
      for (let i = 0; i < options.identityReads; i++) identities.get(`d${i % devices}`);
    });
    const note = `${options.events} events of 200 bytes in batches of ${options.batch}, ${partitions} partitions, WAL, synchronous=FULL`;
    return [
      { group: 'store', name: 'event append (writer thread, fsync per batch)', value: append, unit: 'CPU µs/event', note },
      { group: 'store', name: 'event read, 500 at a time', value: read, unit: 'CPU µs/event' },
      {
        group: 'store',
        name: 'start position by enqueued time',
        value: position,
        unit: 'CPU µs/call',
        note: 'binary search by sequence number',
      },
      {
        group: 'store',
        name: 'twin update (read-modify-write, fsync)',
        value: twinUpdate,
        unit: 'CPU µs/call',
        note: `${options.twinUpdates} updates`,
      },
      { group: 'store', name: 'identity read', value: identityRead, unit: 'CPU µs/call', note: `${options.identityReads} reads` },
    ];
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
