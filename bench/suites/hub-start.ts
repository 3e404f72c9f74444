// What a hub process pays before it serves anything, and to stop: importing the hub, LocalHub.start
// and stop, in memory and on a new data dir on disk. Each run is a fresh process (bench/lib/
// hub-start-probe.ts), as every test file with a hub and every `hub start` is; medians of `runs`.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { median } from '../lib/stats.js';
import type { Row } from '../lib/report.js';

const PROBE = fileURLToPath(new URL('../lib/hub-start-probe.js', import.meta.url));

interface Step {
  cpu: number;
  ms: number;
}
interface Probe {
  import: Step;
  start: Step;
  stop: Step;
  process: number;
}

export async function hubStartSuite(options: { runs: number }): Promise<Row[]> {
  const rows: Row[] = [];
  for (const mode of ['memory', 'disk'] as const) {
    const probes: Probe[] = [];
    for (let i = 0; i < options.runs; i++) {
      const { stdout } = await promisify(execFile)(process.execPath, [PROBE, mode], { timeout: 60_000 });
      probes.push(JSON.parse(stdout) as Probe);
    }
    const group = `hub start, ${mode === 'memory' ? 'in memory' : 'on disk (new data dir)'}`;
    const note = `median of ${options.runs} processes`;
    for (const name of ['import', 'start', 'stop'] as const) {
      rows.push({ group, name: `${name} CPU`, value: median(probes.map((p) => p[name].cpu)), unit: 'CPU-s', note });
      rows.push({ group, name: `${name} wall`, value: median(probes.map((p) => p[name].ms)), unit: 'ms' });
    }
    rows.push({
      group,
      name: 'whole process CPU',
      value: median(probes.map((p) => p.process)),
      unit: 'CPU-s',
      note: "Node's own start included",
    });
  }
  return rows;
}
