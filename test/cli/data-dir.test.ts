import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, cpSync, existsSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createRegistry } from '../../src/clients/service-clients.js';
import { openDatabase } from '../../src/hub/store/database.js';
import { checkDatabase, DataDirError } from '../../src/hub/store/hub-database.js';
import { IdentityStore, type IdentityRecord } from '../../src/hub/store/identity-store.js';
import { EventStore } from '../../src/hub/store/event-store.js';
import { runCli } from '../helpers/cli.js';
import { startTestHub, tempDir } from '../helpers/hub.js';

const PAGE = 4096;

/** A data dir a hub has run in and stopped cleanly (its WAL folded into hub.db), with devices in it. */
async function usedDataDir(): Promise<string> {
  const t = await startTestHub();
  const registry = createRegistry(t.connection);
  for (let i = 0; i < 40; i++) await registry.create({ deviceId: `kept-${i}`, status: 'enabled' });
  await t.stop();
  return t.dataDir;
}

/** `hub start` on `dataDir`: it must refuse with exit 8 and one line matching `message`, and leave hub.db as it was. */
async function assertRefused(dataDir: string, message: RegExp): Promise<void> {
  const db = join(dataDir, 'hub.db');
  const before = existsSync(db) ? readFileSync(db) : undefined;
  const home = tempDir();
  try {
    const result = await runCli(['hub', 'start', '--port', '0', '--amqp-port', '0', '--data-dir', dataDir], { IOTHUB_TUT_HOME: home });
    assert.equal(result.code, 8, result.stderr);
    assert.match(result.stderr, /^error: [^\n]+\n$/, 'one line, no stack trace');
    assert.match(result.stderr, message);
    assert.equal(result.stdout, '');
    assert.deepEqual(existsSync(db) ? readFileSync(db) : undefined, before, 'hub.db is left as it was');
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** Overwrites page `page` (from 1) of a database file with random bytes. */
function damagePage(path: string, page: number): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, randomBytes(PAGE), 0, PAGE, (page - 1) * PAGE);
  closeSync(fd);
}

const restore = /restore it from a backup, or move the data dir away to start a new, empty hub/;

let used: string;
before(async () => (used = await usedDataDir()));
after(() => rmSync(used, { recursive: true, force: true }));

/** Runs `fn` on a copy of the used data dir (`db` is its hub.db), removed afterwards. */
async function onCopy(fn: (dataDir: string, db: string) => Promise<void>): Promise<void> {
  const dataDir = tempDir();
  try {
    cpSync(used, dataDir, { recursive: true });
    await fn(dataDir, join(dataDir, 'hub.db'));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

test('a hub.db of garbage bytes is refused at start, with what to do', () =>
  onCopy(async (dataDir, db) => {
    writeFileSync(db, randomBytes(statSync(db).size));
    await assertRefused(dataDir, new RegExp(`the hub's database ${db} is damaged \\(file is not a database\\): ${restore.source}`));
  }));

test('a hub.db with a damaged page inside (its schema sound) is refused at start, not served until a read trips on it', () =>
  onCopy(async (dataDir, db) => {
    const pages = statSync(db).size / PAGE;
    assert.ok(pages > 10, `${pages} pages: more than the schema's`);
    damagePage(db, pages); // the last page allocated: identities' or twins' rows
    await assertRefused(dataDir, new RegExp(`is damaged \\(.+\\): ${restore.source}`));
  }));

test('a truncated hub.db is refused at start', () =>
  onCopy(async (dataDir, db) => {
    truncateSync(db, Math.floor(statSync(db).size / PAGE / 2) * PAGE);
    await assertRefused(dataDir, new RegExp(`is damaged \\(.*malformed.*\\): ${restore.source}`));
  }));

test('a data dir whose CA is there but whose hub.db is missing or empty is refused, not started as a new hub', () =>
  onCopy(async (dataDir, db) => {
    rmSync(db);
    const gone = (what: string) =>
      new RegExp(
        `^error: the data dir ${dataDir} holds a hub's CA but not its database \\(${db} is ${what}\\): restore hub.db from a backup, or remove the data dir to start a new, empty hub`,
      );
    await assertRefused(dataDir, gone('missing'));
    writeFileSync(db, '');
    await assertRefused(dataDir, gone('empty'));
  }));

test("the start-up check: a whole quick_check finds damage anywhere; above the size bound, the tables but the event log's are checked whole", () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'hub.db');
    const db = openDatabase(path);
    const identities = new IdentityStore(db);
    new EventStore(db).ensureHub(4, Date.now());
    db.transaction(() => {
      for (let i = 0; i < 50; i++) identities.put({ deviceId: `d${i}`, moduleId: '', statusReason: 'x'.repeat(500) } as IdentityRecord);
    });
    const insert = db.prepare(
      "INSERT INTO events (partition, sequence, offset, enqueued_ms, body, properties) VALUES (?, ?, ?, 0, ?, '{}')",
    );
    db.transaction(() => {
      for (let s = 0; s < 2000; s++) insert.run(s % 4, s, s, randomBytes(1000));
    });
    const identitiesRoot = db.prepare<[], { rootpage: number }>("SELECT rootpage FROM sqlite_schema WHERE name = 'identities'").get()!
      .rootpage;
    db.close();
    checkDatabase(path); // sound
    checkDatabase(path, 0);
    const pages = statSync(path).size / PAGE;
    const damage = (page: number) => damagePage(path, page);
    // A page in the middle of the event log, which holds most of the file.
    const copy = join(dir, 'copy.db');
    writeFileSync(copy, readFileSync(path));
    damage(Math.floor(pages * 0.6));
    assert.throws(() => checkDatabase(path), DataDirError);
    // The identities' root page, with the partial check (the bound set to 0).
    writeFileSync(path, readFileSync(copy));
    damage(identitiesRoot);
    assert.throws(
      () => checkDatabase(path, 0),
      (err: Error) => err instanceof DataDirError && /is damaged/.test(err.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
