// Preloaded into a CLI subprocess (NODE_OPTIONS=--import=...): at exit, writes the Azure SDK packages
// (and node-forge, which only --x509 needs) the process loaded, as a JSON array, to the file
// $SDK_LOADS_FILE; and every package it loaded to $PACKAGE_LOADS_FILE. They are CommonJS, so
// whatever loaded them (import or require) left them in require's cache.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const sdkFile = process.env.SDK_LOADS_FILE;
const packageFile = process.env.PACKAGE_LOADS_FILE;
if (sdkFile || packageFile) {
  process.on('exit', () => {
    const files = Object.keys(createRequire(import.meta.url).cache);
    /** The names of the packages whose files match `pattern` (its first group is the name). */
    const loaded = (pattern: RegExp) => [...new Set(files.map((path) => pattern.exec(path)?.[1]).filter(Boolean))];
    if (sdkFile)
      writeFileSync(
        sdkFile,
        JSON.stringify(loaded(/[/\\]node_modules[/\\]((?:@azure[/\\])?azure-[^/\\]+|@azure[/\\][^/\\]+|node-forge)[/\\]/)),
      );
    if (packageFile) writeFileSync(packageFile, JSON.stringify(loaded(/.*[/\\]node_modules[/\\]((?:@[^/\\]+[/\\])?[^/\\]+)[/\\]/)));
  });
}
