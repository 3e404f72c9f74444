// The event writer's thread (see event-writer.ts): its own connection to the hub's database, one
// transaction per batch it is sent, and an answer once that COMMIT has returned. The connection is
// opened with the first batch and again after a failed open, so that a thread started on a full
// disk answers each batch (refused) instead of dying, and writes once there is room.
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './database.js';
import { DiskFullError } from './disk-space.js';
import { batchCommitter, type EventBatch, type WriterReply } from './event-writer.js';
import { WriteTurns } from './write-turns.js';

const { path, turns: flags } = workerData as { path: string; turns: Int32Array<SharedArrayBuffer> };
let commit: ((batch: EventBatch) => void) | undefined;
// Each commit goes before the hub connection's next transaction (see WriteTurns).
const turns = new WriteTurns(flags);

parentPort!.on('message', (batch: EventBatch) => {
  let reply: WriterReply;
  turns.writerEnter();
  try {
    commit ??= batchCommitter(openDatabase(path));
    commit(batch);
    reply = { ok: true };
  } catch (err) {
    reply = { ok: false, message: err instanceof Error ? err.message : String(err), noSpace: err instanceof DiskFullError };
  } finally {
    turns.writerLeave();
  }
  parentPort!.postMessage(reply);
});
