// Preloaded into a CLI subprocess (NODE_OPTIONS=--import=...): at exit, writes the Azure SDK packages
// (and node-forge, which only --x509 needs) the process loaded, as a JSON array, to the file
// $SDK_LOADS_FILE. They are CommonJS, so whatever loaded them (import or require) left them in
// require's cache.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const file = process.env.SDK_LOADS_FILE;
if (file) {
  process.on('exit', () => {
    const packages = Object.keys(createRequire(import.meta.url).cache).map(
      (path) => /[/\\]node_modules[/\\]((?:@azure[/\\])?azure-[^/\\]+|@azure[/\\][^/\\]+|node-forge)[/\\]/.exec(path)?.[1],
    );
    writeFileSync(file, JSON.stringify([...new Set(packages.filter(Boolean))]));
  });
}
