// Loaded with `node --import` into a CLI run: on exit, prints the CPU time the whole process used
// (user + system, from its start: Node's own bootstrap included) and how many CommonJS modules it
// loaded, so the benchmark can set what a command costs beside what it loads.
import { createRequire } from 'node:module';

const cache = createRequire(import.meta.url).cache;

process.on('exit', () => {
  const { user, system } = process.cpuUsage();
  process.stderr.write(`\nCLI-CPU ${JSON.stringify({ cpuS: (user + system) / 1e6, modules: Object.keys(cache).length })}\n`);
});
