// Loaded with `node --import` into a CLI run: on exit, prints which heavy packages the run loaded
// (CommonJS packages imported from ESM land in require.cache too), so the benchmark can check
// that a subcommand loads only the SDK it uses.
import { createRequire } from 'node:module';

const HEAVY = /^(azure-iot.*|azure-iothub|@azure\/.*|rhea.*|aedes.*|mqtt)$/;
const cache = createRequire(import.meta.url).cache;

process.on('exit', () => {
  const packages = new Set<string>();
  for (const file of Object.keys(cache)) {
    const name = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1];
    if (name && HEAVY.test(name)) packages.add(name);
  }
  process.stderr.write(`\nSDK-PACKAGES ${JSON.stringify([...packages].sort())}\n`);
});
