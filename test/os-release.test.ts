import '../src/clients/os-release.js'; // first, as in the CLI: before any Azure SDK
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch } from 'node:os';
import { join } from 'node:path';
import { tempDir } from './helpers/hub.js';

const onLinux = process.platform === 'linux' && existsSync('/etc/os-release');

test(
  "the device SDK's user agent names the distribution from /etc/os-release, without running lsb_release",
  { skip: !onLinux && 'only Linux has /etc/os-release' },
  async (ctx) => {
    // An lsb_release first on PATH that leaves a mark: getos runs it through the shell, by name.
    const dir = tempDir();
    const mark = join(dir, 'ran');
    writeFileSync(join(dir, 'lsb_release'), `#!/bin/sh\ntouch '${mark}'\nprintf 'Release:\\tfrom-lsb\\n'\n`);
    chmodSync(join(dir, 'lsb_release'), 0o755);
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    ctx.after(() => {
      process.env.PATH = path;
      rmSync(dir, { recursive: true, force: true });
    });

    const release = readFileSync('/etc/os-release', 'utf8');
    const field = (name: string) => new RegExp(`^${name}="?([^"\\n]*)"?$`, 'm').exec(release)?.[1];
    const common = createRequire(createRequire(import.meta.url).resolve('azure-iot-device'))('azure-iot-common') as {
      getAgentPlatformString(callback: (agent: string) => void): void;
    };
    const agent = await new Promise<string>((resolve) => common.getAgentPlatformString(resolve));
    assert.equal(agent, `node ${process.version}; ${field('NAME')} ${field('VERSION_ID')}; ${arch()}`);
    assert.ok(!existsSync(mark), 'lsb_release was run');
  },
);
