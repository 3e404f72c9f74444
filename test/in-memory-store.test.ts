import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { startTestHub } from './helpers/hub.js';
import { runTogether } from './helpers/together.js';

// The hub suites again, on the in-memory store of `hub start --in-memory` and the demo: its commits
// take another path than a data dir's (no WAL, no fsync, the event log written in-thread rather than
// by the writer thread). Each suite's hubs that name no data dir keep their store in memory here; its
// restart tests, which name a data dir, would run again unchanged on disk and are skipped (onDisk in
// test/helpers/hub.ts). The suites left out read the hub's files.
process.env.IOTHUB_TUT_TEST_STORE = 'memory';

test('a test hub that names no data dir keeps its store in memory here', async () => {
  const t = await startTestHub();
  try {
    assert.equal(t.hub.tls.caFile, undefined);
    assert.ok(!existsSync(`${t.dataDir}/hub.db`), readdirSync(t.dataDir).join());
  } finally {
    await t.dispose();
  }
});

runTogether(new URL('./hub/', import.meta.url), 6, {
  name: 'test/hub/ on the in-memory store',
  files: [
    'registry',
    'registry-bulk',
    'twins-integration',
    'methods',
    'jobs',
    'query-route',
    'configurations',
    'events',
    'import-export',
    'telemetry',
    'd2c-system-properties',
    'c2d',
    'routing',
  ].map((suite) => `${suite}.test.js`),
});
