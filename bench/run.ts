// `npm run bench`: starts a local hub as its own process, drives it from worker processes over
// loopback, prints a table with each target, and writes bench/results.json.
import { cpus, totalmem, platform, release } from 'node:os';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startHub, type HubUnderTest } from './lib/hub.js';
import { table, verdict, type Row } from './lib/report.js';
import { profileWorkers } from './lib/workers.js';
import { toolkitSuite } from './suites/toolkit.js';
import { cliStartupSuite } from './suites/cli-startup.js';
import { fairnessSuite } from './suites/fairness.js';
import { methodsAmqpSuite, methodsSuite, twinSuite } from './suites/methods-twin.js';
import { connectionsSuite } from './suites/connections.js';
import { d2cSuite } from './suites/d2c.js';
import { d2cHttpsSuite } from './suites/d2c-https.js';
import { d2cAmqpSuite } from './suites/d2c-amqp.js';
import { c2dSuite } from './suites/c2d.js';
import { storeSuite } from './suites/store.js';
import { soakSuite } from './suites/soak.js';
import { hubStartSuite } from './suites/hub-start.js';

const RESULTS = fileURLToPath(new URL('../../bench/results.json', import.meta.url));

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    'max-connections': { type: 'string', default: '10000' },
    'soak-minutes': { type: 'string', default: '10' },
    // A directory for V8 CPU profiles of the hub and of every worker process.
    profile: { type: 'string' },
    // The hub under test routes messages as this file says (hub start --routing): what routing costs.
    routing: { type: 'string' },
  },
});
const quick = args.quick!;
const scale = (full: number, small: number) => (quick ? small : full);

type Suite = (hub: HubUnderTest) => Promise<Row[]>;
const soakMinutes = Number(args['soak-minutes']);
if (!(soakMinutes > 0)) throw new Error(`--soak-minutes must be a positive number, not ${args['soak-minutes']}`);
const latency = {
  sequential: scale(2000, 200),
  concurrent: scale(5000, 500),
  inFlight: 50,
  methodDevices: 10,
  twinPatches: scale(1000, 100),
  timeMs: scale(20_000, 5_000),
};
const suites: Record<string, Suite> = {
  store: () =>
    storeSuite({ events: scale(100_000, 10_000), batch: 200, twinUpdates: scale(3000, 300), identityReads: scale(100_000, 10_000) }),
  toolkit: (hub) => toolkitSuite(hub, { runs: scale(11, 3), telemetryDevices: 1000 }),
  'cli-startup': (hub) => cliStartupSuite(hub, { runs: scale(5, 2) }),
  'hub-start': () => hubStartSuite({ runs: scale(11, 3) }),
  twin: (hub) => twinSuite(hub, latency),
  methods: (hub) => methodsSuite(hub, latency),
  'methods-amqp': (hub) => methodsAmqpSuite(hub, latency),
  d2c: (hub) =>
    d2cSuite(hub, {
      deviceCounts: [1, 10, 100],
      messages: scale(60_000, 6_000),
      payloadBytes: 200,
      inFlight: 200,
      timeMs: scale(30_000, 10_000),
    }),
  'd2c-https': (hub) =>
    d2cHttpsSuite(hub, {
      deviceCounts: [1, 10, 100],
      messages: scale(20_000, 2_000),
      payloadBytes: 200,
      inFlight: 100,
      timeMs: scale(30_000, 10_000),
      batch: 100,
    }),
  'd2c-amqp': (hub) =>
    d2cAmqpSuite(hub, {
      deviceCounts: [1, 10, 100],
      messages: scale(60_000, 6_000),
      payloadBytes: 200,
      inFlight: 200,
      timeMs: scale(30_000, 10_000),
    }),
  c2d: (hub) => c2dSuite(hub, { count: scale(2000, 200), inFlight: 20, timeMs: latency.timeMs }),
  fairness: (hub) => fairnessSuite(hub, { patches: 5000, quietSamples: scale(1000, 200), timeMs: scale(60_000, 20_000) }),
  // Last: it leaves the hub holding many devices.
  connections: (hub) =>
    connectionsSuite(hub, { max: Number(args['max-connections']), perWorker: 2500, concurrency: 25, stepTimeMs: 60_000 }),
  soak: (hub) =>
    soakSuite(hub, {
      minutes: soakMinutes,
      warmUpMs: Math.min(0.6, Math.max(0.3, 3 / soakMinutes)) * soakMinutes * 60_000,
      sampleMs: 5000,
      telemetryDevices: 20,
      telemetryPerSecond: 200,
      sdkDevices: 5,
      servicePerSecond: 10,
      churnDevices: 20,
      connectsPerSecond: 5,
    }),
};
/** Run only when named (`--only soak`): ten minutes of its own. */
const onRequest = new Set(['soak']);

function machine() {
  let fdLimit: string | null = null;
  try {
    fdLimit = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    // not a POSIX shell
  }
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${platform()} ${release()}`,
    fdLimit,
  };
}

const selected = args.only ? args.only.split(',') : Object.keys(suites).filter((s) => !onRequest.has(s));
const unknown = selected.filter((s) => !suites[s]);
if (unknown.length) throw new Error(`unknown suite(s) ${unknown.join(', ')}; known: ${Object.keys(suites).join(', ')}`);

const info = machine();
console.log(
  `iothub-tut benchmarks: ${info.cpus} × ${info.cpuModel}, ${info.memoryGiB} GiB, Node ${info.node}, ${info.platform}, ulimit -n ${info.fdLimit}${quick ? ' (quick)' : ''}`,
);
const rows: Row[] = [];
if (args.profile) profileWorkers(args.profile);
const hub = await startHub({ cpuProfDir: args.profile, routingFile: args.routing });
try {
  for (const name of selected) {
    const started = Date.now();
    process.stdout.write(`${name}... `);
    try {
      rows.push(...(await suites[name](hub)));
      console.log(`${((Date.now() - started) / 1000).toFixed(1)} s`);
    } catch (err) {
      console.log('failed');
      console.error(err);
      rows.push({ group: name, name: 'suite failed', value: null, unit: '', note: String((err as Error).message ?? err).split('\n')[0] });
    }
  }
} finally {
  await hub.stop();
}
console.log('\n' + table(rows));
writeFileSync(
  RESULTS,
  JSON.stringify({ date: new Date().toISOString(), quick, machine: info, rows: rows.map((r) => ({ ...r, result: verdict(r) })) }, null, 2) +
    '\n',
);
console.log(`\nwrote ${RESULTS}`);
