// Preloaded into a CLI subprocess (NODE_OPTIONS=--import=...): at exit, writes the Azure SDK packages
// the process loaded, as a JSON array, to the file $SDK_LOADS_FILE; and every package it loaded to
// $PACKAGE_LOADS_FILE. They are CommonJS, so whatever loaded them (import or require) left them in
// require's cache. A test file that runs the CLI in-process asks loadedSdkPackages() itself.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The names of the packages this process has loaded so far whose files match `pattern` (its first group is the name). */
function loaded(pattern: RegExp): string[] {
  const names = Object.keys(createRequire(import.meta.url).cache).map((path) => pattern.exec(path)?.[1]);
  return [...new Set(names.filter((name): name is string => name !== undefined))];
}

/** The Azure SDK packages this process has loaded so far. */
export function loadedSdkPackages(): string[] {
  return loaded(/[/\\]node_modules[/\\]((?:@azure[/\\])?azure-[^/\\]+|@azure[/\\][^/\\]+)[/\\]/);
}

const sdkFile = process.env.SDK_LOADS_FILE;
const packageFile = process.env.PACKAGE_LOADS_FILE;
if (sdkFile || packageFile) {
  process.on('exit', () => {
    if (sdkFile) writeFileSync(sdkFile, JSON.stringify(loadedSdkPackages()));
    if (packageFile) writeFileSync(packageFile, JSON.stringify(loaded(/.*[/\\]node_modules[/\\]((?:@[^/\\]+[/\\])?[^/\\]+)[/\\]/)));
  });
}
