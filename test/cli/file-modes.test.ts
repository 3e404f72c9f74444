import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CliProcess, createIdentity } from '../helpers/cli.js';
import { tempDir } from '../helpers/hub.js';

function modeOf(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

test('the data dir, its lock, the database, the CA key and the profile are owner-only, also when they were not before', async () => {
  const home = tempDir();
  const dataDir = join(home, 'data');
  const env = { IOTHUB_TUT_HOME: home };
  const secretFiles = ['hub.db', 'hub.db-wal', 'hub.db-shm', 'tls/ca-key.pem'].map((f) => join(dataDir, f));
  const hubsDir = join(home, 'hubs');
  try {
    for (const round of ['first start', 'start over files with loose modes']) {
      const hub = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--data-dir', dataDir, '--json'], env);
      try {
        const started = await hub.waitFor((l) => l.event === 'started');
        // A write, so the WAL and its index exist and hold keys.
        await createIdentity(home, `modes-${round.length}`);
        assert.equal(modeOf(dataDir), '700', `${round}: data dir`);
        assert.equal(modeOf(join(dataDir, 'tls')), '700', `${round}: tls dir`);
        for (const file of secretFiles) {
          assert.ok(existsSync(file), `${file} exists`);
          assert.equal(modeOf(file), '600', `${round}: ${file}`);
        }
        assert.equal(modeOf(hubsDir), '700', `${round}: the profiles' dir`);
        assert.equal(modeOf(join(hubsDir, `${started.pid}.json`)), '600', `${round}: profile`);
        assert.equal(modeOf(join(dataDir, 'hub.lock')), '600', `${round}: data dir lock`);
      } finally {
        assert.equal(await hub.stop(), 0);
      }
      // What an older version, or a careless copy, may have left behind.
      chmodSync(dataDir, 0o755);
      chmodSync(join(dataDir, 'tls'), 0o755);
      for (const file of secretFiles) if (existsSync(file)) chmodSync(file, 0o644);
      chmodSync(hubsDir, 0o755);
      chmodSync(join(dataDir, 'hub.lock'), 0o644);
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
