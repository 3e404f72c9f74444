import { readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';

// azure-iot-device names the Linux distribution in its user agent through the `getos` package, which
// runs `lsb_release -a` in a shell (and that script six more processes) once per process: about a
// tenth of a device command's CPU. Imported before any Azure SDK, this module puts the same answer,
// read in-process from /etc/os-release, in getos's place in the require cache. Where that file is
// missing or `getos` is not where the SDK finds it, the SDK keeps the real one.

/** getos's answer: `dist release` goes into the SDK's user agent. */
interface OsInfo {
  os: 'linux';
  dist: string;
  release?: string;
  codename?: string;
}

function osRelease(): OsInfo | undefined {
  let text: string;
  try {
    text = readFileSync('/etc/os-release', 'utf8');
  } catch {
    return undefined;
  }
  const fields = new Map(
    text.split('\n').flatMap((line) => {
      const match = /^([A-Z_]+)=(?:"(.*)"|(.*))$/.exec(line.trim());
      return match ? [[match[1]!, match[2] ?? match[3] ?? ''] as const] : [];
    }),
  );
  const dist = fields.get('NAME');
  if (!dist) return undefined;
  return { os: 'linux', dist, release: fields.get('VERSION_ID'), codename: fields.get('VERSION_CODENAME') };
}

function getosPath(): string | undefined {
  try {
    const device = createRequire(import.meta.url).resolve('azure-iot-device');
    const common = createRequire(device).resolve('azure-iot-common');
    return createRequire(common).resolve('getos');
  } catch {
    return undefined;
  }
}

if (process.platform === 'linux') {
  const info = osRelease();
  const path = info && getosPath();
  if (info && path) {
    const getos = new Module(path);
    getos.filename = path;
    getos.loaded = true;
    // Asynchronous, as getos's own callback is.
    getos.exports = (callback: (err: Error | null, os: OsInfo) => void) => process.nextTick(callback, null, info);
    createRequire(import.meta.url).cache[path] = getos;
  }
}
