// The event writer's thread (see event-writer.ts): its own connection to the hub's database, one
// transaction per batch it is sent, and an answer once that COMMIT has returned.
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './database.js';
import { batchCommitter, type EventBatch, type WriterReply } from './event-writer.js';

const db = openDatabase((workerData as { path: string }).path);
const commit = batchCommitter(db);

parentPort!.on('message', (batch: EventBatch) => {
  let reply: WriterReply;
  try {
    commit(batch);
    reply = { ok: true };
  } catch (err) {
    reply = { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
  parentPort!.postMessage(reply);
});
