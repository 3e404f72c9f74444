// Preloaded into a CLI subprocess (NODE_OPTIONS=--import=...): at exit, writes the Azure SDK packages
// (and node-forge, which only --x509 needs) the process loaded, as a JSON array, to the file
// $SDK_LOADS_FILE. They are CommonJS, so whatever loaded them (import or require) left them in
// require's cache. A test file that runs the CLI in-process asks loadedSdkPackages() itself.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The Azure SDK packages (and node-forge) this process has loaded so far. */
export function loadedSdkPackages(): string[] {
  const packages = Object.keys(createRequire(import.meta.url).cache).map(
    (path) => /[/\\]node_modules[/\\]((?:@azure[/\\])?azure-[^/\\]+|@azure[/\\][^/\\]+|node-forge)[/\\]/.exec(path)?.[1],
  );
  return [...new Set(packages.filter((name): name is string => name !== undefined))];
}

const file = process.env.SDK_LOADS_FILE;
if (file) process.on('exit', () => writeFileSync(file, JSON.stringify(loadedSdkPackages())));
