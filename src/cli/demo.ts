import { Option, type Command } from 'commander';
import { run, type Output } from './output.js';
import { printIdentity } from './create-device.js';
import { printProgress } from './schedule-job.js';
import { examples } from './help.js';
import {
  identityConnectionWithKey,
  parseConnection,
  type EventHubConnection,
  type ServiceConnection,
} from '../clients/connection-string.js';
import { LOCK_DOOR_METHOD, TUTORIAL_NAMES } from '../apps/tutorial-names.js';
import {
  checkTransport,
  DEVICE_TRANSPORTS,
  featureNames,
  localHubServes,
  offers,
  type DeviceFeature,
  type DeviceTransport,
} from '../clients/device-clients.js';

/** One step of the demo: a tutorial app, run against the in-process hub and narrated. */
interface DemoStep {
  title: string;
  explain: string;
  /** What its device app uses of the transport (none: a service-only step). */
  features: readonly DeviceFeature[];
  /** eventHub: the hub's Event Hub-compatible endpoint, where device-to-cloud messages are read; transport: the device app's. */
  run(connection: ServiceConnection, out: Output, eventHub: EventHubConnection, transport: DeviceTransport): Promise<unknown>;
}

const { device: DEVICE, module: MODULE, managedDevice: MANAGED_DEVICE } = TUTORIAL_NAMES;

const steps: DemoStep[] = [
  {
    title: 'CreateDeviceIdentity',
    explain: `registers ${DEVICE} in the identity registry; running it again returns the same identity and keys`,
    features: [],
    async run(connection, out) {
      const { createDevice } = await import('../apps/create-identity.js');
      const device = await createDevice(connection, { deviceId: DEVICE });
      printIdentity(out, 'Device', device);
      const again = await createDevice(connection, { deviceId: DEVICE });
      if (again.primaryKey !== device.primaryKey) throw new Error('the second run returned a different key');
      out.line(`  second run: ${again.created ? 'created' : 'already registered, same key'}`);
      return { device: device.deviceId, created: device.created };
    },
  },
  {
    title: 'CreateModule',
    explain: `adds the module identity ${MODULE} to ${DEVICE}`,
    features: [],
    async run(connection, out) {
      const { createModule } = await import('../apps/create-identity.js');
      const { module } = await createModule(connection, { deviceId: DEVICE, moduleId: MODULE });
      printIdentity(out, 'Module', module);
      return { module: module.moduleId, created: module.created };
    },
  },
  {
    title: 'ReceiveModuleTwinDesiredPropertiesPatch + UpdateModuleTwinDesiredProperties',
    explain: `${MODULE} waits for desired-property patches; the service sets telemetryInterval on its twin`,
    features: ['twin'],
    async run(connection, out, _eventHub, transport) {
      const [{ identityConnection }, { receiveTwinPatch }, { updateModuleTwin }] = await Promise.all([
        import('../clients/identity-connection.js'),
        import('../apps/receive-twin-patch.js'),
        import('../apps/update-module-twin.js'),
      ]);
      const ids = { deviceId: DEVICE, moduleId: MODULE };
      let ready!: () => void;
      const subscribed = new Promise<void>((resolve) => (ready = resolve));
      const receiving = receiveTwinPatch(await identityConnection(connection, ids), {
        transport,
        count: 1,
        timeoutSeconds: 30,
        onReady: ready,
        onPatch: (patch) => out.line(`  module received patch: ${JSON.stringify(patch)}`),
      });
      await Promise.race([subscribed, receiving]);
      out.line('  module is waiting for desired property patches');
      const { after } = await updateModuleTwin(connection, { ...ids, desired: { telemetryInterval: 122 } });
      out.line(`  service set desired telemetryInterval=122 (desired $version ${after.properties.desired.$version})`);
      await receiving;
      return { desiredVersion: after.properties.desired.$version };
    },
  },
  {
    title: 'UpdateReported',
    explain: `${MODULE} reports properties to its twin; the service reads them back`,
    features: ['twin'],
    async run(connection, out, _eventHub, transport) {
      const [{ identityConnection }, { updateReported }, { createRegistry }] = await Promise.all([
        import('../clients/identity-connection.js'),
        import('../apps/update-reported.js'),
        import('../clients/service-clients.js'),
      ]);
      const ids = { deviceId: DEVICE, moduleId: MODULE };
      const { version } = await updateReported(await identityConnection(connection, ids), {
        transport,
        reported: { telemetryInterval: 122, lastUpdated: new Date().toISOString() },
      });
      out.line(`  module reported telemetryInterval=122 (reported $version ${version})`);
      const twin = (await createRegistry(connection).getModuleTwin(ids.deviceId, ids.moduleId)).responseBody;
      const { $metadata: _metadata, ...reported } = twin.properties.reported;
      out.line(`  service sees reported: ${JSON.stringify(reported)}`);
      return { reportedVersion: version };
    },
  },
  {
    title: 'Device management',
    explain: `${MANAGED_DEVICE} answers the rebootDevice direct method, reboots (1 s) and reports rebootTime; the service invokes it and reads the time from the twin`,
    features: ['methods', 'twin'],
    async run(connection, out, _eventHub, transport) {
      const { createDevice } = await import('../apps/create-identity.js');
      const { rebootDevice } = await import('../apps/reboot-device.js');
      const { invokeReboot } = await import('../apps/invoke-reboot.js');
      const device = await createDevice(connection, { deviceId: MANAGED_DEVICE });
      let ready!: () => void;
      const listening = new Promise<void>((resolve) => (ready = resolve));
      const rebooting = rebootDevice(identityConnectionWithKey(connection, device, device.primaryKey), {
        transport,
        rebootSeconds: 1,
        count: 1,
        onEvent: (e) => (e.event === 'ready' ? ready() : out.line(out.color.dim(`  device: ${e.event}`))),
      });
      await Promise.race([listening, rebooting]);
      const result = await invokeReboot(connection, { deviceId: MANAGED_DEVICE, waitSeconds: 30 });
      await rebooting;
      out.field('Method response', `${result.status} ${JSON.stringify(result.payload)}`);
      out.field('Last reboot time', result.rebootTime);
      return result;
    },
  },
  {
    title: 'SimulatedDevice + monitor',
    explain: `${DEVICE} sends 5 windSpeed messages; a monitor reads them from the hub's Event Hub-compatible endpoint`,
    features: ['telemetry'],
    async run(connection, out, eventHub, transport) {
      const [{ identityConnection }, { sendTelemetry }, { monitorEvents }] = await Promise.all([
        import('../clients/identity-connection.js'),
        import('../apps/send-telemetry.js'),
        import('../apps/monitor-events.js'),
      ]);
      let ready!: () => void;
      const listening = new Promise<void>((resolve) => (ready = resolve));
      const monitoring = monitorEvents(eventHub, {
        deviceId: DEVICE,
        count: 5,
        timeoutSeconds: 60,
        onReady: () => ready(),
        onEvent: (e) =>
          out.line(`  monitor: ${e.deviceId} ${JSON.stringify(e.body)} ${e.systemProperties.messageId} ${JSON.stringify(e.properties)}`),
      });
      await Promise.race([listening, monitoring]);
      const sent = await sendTelemetry([await identityConnection(connection, { deviceId: DEVICE })], {
        transport,
        count: 5,
        intervalMs: 200,
        onConfirm: (c) => out.line(out.color.dim(`  device: message ${c.messageId} confirmed (${c.confirmed})`)),
      });
      const { received, timedOut } = await monitoring;
      if (timedOut) throw new Error(`the monitor saw ${received} of 5 messages`);
      return { confirmed: sent.confirmed, received };
    },
  },
  {
    title: 'Cloud-to-device messages',
    explain: `the service sends ${DEVICE} a message with ack full; the device receives and completes it; the hub's feedback says Success`,
    features: ['c2d'],
    async run(connection, out, _eventHub, transport) {
      const [{ identityConnection }, { receiveC2d }, { sendC2d }] = await Promise.all([
        import('../clients/identity-connection.js'),
        import('../apps/receive-c2d.js'),
        import('../apps/send-c2d.js'),
      ]);
      let ready!: () => void;
      const listening = new Promise<void>((resolve) => (ready = resolve));
      const receiving = receiveC2d(await identityConnection(connection, { deviceId: DEVICE }), {
        transport,
        count: 1,
        timeoutSeconds: 30,
        onReady: ready,
        onMessage: (m) => out.line(`  device received: ${JSON.stringify(m.data)} (message id ${m.messageId})`),
      });
      await Promise.race([listening, receiving]);
      const { feedback } = await sendC2d(connection, {
        deviceId: DEVICE,
        ack: 'full',
        waitFeedbackSeconds: 30,
        onSent: (m) => out.line(`  service sent: ${JSON.stringify(m.data)} (message id ${m.messageId})`),
        onFeedback: (f) => out.line(`  service got feedback: ${f.statusCode} (${f.description})`),
      });
      const { received } = await receiving;
      const statusCode = feedback[0]?.statusCode;
      if (statusCode !== 'Success') throw new Error(`the feedback said ${statusCode ?? 'nothing'}, not Success`);
      return { received, feedback: statusCode };
    },
  },
  {
    title: 'Schedule and broadcast jobs',
    explain: `${MANAGED_DEVICE} answers the lockDoor direct method; the service schedules a job that calls it on the devices a query selects, and follows it until it ends`,
    features: ['methods'],
    async run(connection, out, _eventHub, transport) {
      const [{ createDevice }, { answerMethods }, { scheduleJob, watchJob }] = await Promise.all([
        import('../apps/create-identity.js'),
        import('../apps/answer-methods.js'),
        import('../apps/schedule-job.js'),
      ]);
      const device = await createDevice(connection, { deviceId: MANAGED_DEVICE });
      let ready!: () => void;
      const listening = new Promise<void>((resolve) => (ready = resolve));
      const answering = answerMethods(identityConnectionWithKey(connection, device, device.primaryKey), {
        methods: [LOCK_DOOR_METHOD],
        status: 200,
        transport,
        count: 1,
        timeoutSeconds: 60,
        onEvent: (e) =>
          e.event === 'ready'
            ? ready()
            : out.line(out.color.dim(`  device: ${e.event === 'call' ? `${e.methodName} answered ${e.status}` : e.event}`)),
      });
      await Promise.race([listening, answering]);
      const queryCondition = `deviceId = '${MANAGED_DEVICE}'`;
      const job = await scheduleJob(connection, { queryCondition, method: { methodName: LOCK_DOOR_METHOD, payload: {} } });
      out.line(`  service scheduled job ${job.jobId}: ${LOCK_DOOR_METHOD} where ${queryCondition}`);
      const ended = await watchJob(connection, job.jobId, {
        timeoutSeconds: 60,
        intervalMs: 250,
        onProgress: (j) => printProgress(out, j),
      });
      await answering;
      const stats = ended.deviceJobStatistics;
      if (ended.status !== 'completed' || stats?.succeededCount !== 1)
        throw new Error(`job ${ended.jobId} ended ${ended.status} with ${stats?.succeededCount ?? 0} of 1 device(s) succeeded`);
      return { status: ended.status, deviceJobStatistics: stats };
    },
  },
];

export function configureDemo(command: Command): void {
  command
    .addOption(
      new Option(
        '--transport <name>',
        "the device apps' transport; a step whose feature the device SDK lacks over it (twins and methods over http) runs over mqtt",
      )
        .choices(DEVICE_TRANSPORTS)
        .default('mqtt'),
    )
    .addHelpText('after', examples('demo', 'demo --transport http', 'demo --json --no-color'))
    .action((opts: { transport: DeviceTransport }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        checkTransport(opts.transport, [], { port: 0 }); // the demo's hub is a local one: a transport it does not serve is refused before it starts
        const { LocalHub } = await import('../hub/server.js');
        const hub = await LocalHub.start({ inMemory: true, port: 0, eventHubPort: 0 });
        const connection = parseConnection('service', hub.serviceConnectionString(), { ca: hub.tls.ca, port: hub.port });
        const eventHub = parseConnection('eventhub', hub.eventHubConnectionString());
        out.heading(`iothub-tut demo: a local IoT Hub on ${hub.hostName}:${hub.port} (in memory), devices over ${opts.transport}`);
        const report: Array<{ step: string; transport?: DeviceTransport; ok: boolean; ms: number; result?: unknown; error?: string }> = [];
        try {
          for (const [i, step] of steps.entries()) {
            // A step whose device app needs what the transport lacks, or what the local hub does not serve over it, runs over MQTT, and says so.
            const offered = offers(opts.transport, step.features);
            const transport = offered && localHubServes(opts.transport, step.features) ? opts.transport : 'mqtt';
            const why = offered
              ? `the local hub does not serve ${featureNames(step.features)} over ${opts.transport} yet`
              : `the device SDK has no ${featureNames(step.features)} over ${opts.transport}`;
            const over = step.features.length === 0 ? '' : transport === opts.transport ? ` (over ${transport})` : ` (over mqtt: ${why})`;
            out.line();
            out.heading(`${i + 1}. ${step.title}`);
            out.line(out.color.dim(`  ${step.explain}${over}`));
            const started = Date.now();
            const result = await step.run(connection, out, eventHub, transport);
            report.push({
              step: step.title,
              ...(step.features.length > 0 ? { transport } : {}),
              ok: true,
              ms: Date.now() - started,
              result,
            });
          }
        } catch (err) {
          report.push({ step: steps[report.length]!.title, ok: false, ms: 0, error: (err as Error).message });
          throw err;
        } finally {
          await hub.stop();
          out.result({ steps: report, ok: report.every((s) => s.ok) });
        }
        out.line();
        out.line(out.color.green(`All ${steps.length} steps passed.`));
      }),
    );
}
