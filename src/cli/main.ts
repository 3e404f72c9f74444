import { Command, CommanderError } from 'commander';
import { withEnvironment } from '../clients/environment.js';
import { chooseHub } from '../clients/local-hub-profile.js';
import { examples } from './help.js';
import { asRun, type CliIo } from './io.js';

/** Configures a command's arguments, options and action (in its own module, loaded only to run it). */
type Configure = (command: Command) => void;

// Each command's name and description, in the order `--help` lists them. Only the module of the
// command being run is loaded (and with it the SDK it uses), so `--help` loads commander alone and
// no command pays for the others' modules.
const COMMANDS: Array<[name: string, description: string, load: () => Promise<Configure>]> = [
  [
    'hub',
    'the local IoT Hub: HTTPS REST, MQTT and MQTT over WebSockets on one TLS port',
    async () => (await import('./hub.js')).configureHub,
  ],
  [
    'demo',
    'run every tutorial end to end against an in-process local hub (no set-up, nothing kept)',
    async () => (await import('./demo.js')).configureDemo,
  ],
  [
    'create-device',
    "CreateDeviceIdentity: register a device in the IoT hub's identity registry (idempotent) and show its key",
    async () => (await import('./create-device.js')).configureCreateDevice,
  ],
  [
    'create-module',
    'CreateModule: register a device (if needed) and a module identity on it (idempotent) and show their keys',
    async () => (await import('./create-module.js')).configureCreateModule,
  ],
  [
    'update-module-twin',
    "UpdateModuleTwinDesiredProperties: set desired properties on the module twin (or, with --device, the device twin), guarded by the twin's etag",
    async () => (await import('./update-module-twin.js')).configureUpdateModuleTwin,
  ],
  [
    'receive-twin-patch',
    'ReceiveModuleTwinDesiredPropertiesPatch: connect as the module (or device) and print each desired-properties patch as it arrives, until Ctrl-C',
    async () => (await import('./receive-twin-patch.js')).configureReceiveTwinPatch,
  ],
  [
    'update-reported',
    'report properties from the module (or device) to its twin, and show the reported version',
    async () => (await import('./update-reported.js')).configureUpdateReported,
  ],
  [
    'reboot-device',
    'dmpatterns_getstarted_device: a simulated device that answers the rebootDevice direct method, reboots, and reports rebootTime',
    async () => (await import('./reboot-device.js')).configureRebootDevice,
  ],
  [
    'answer-methods',
    "the jobs tutorial's device (simDevice): answer named direct methods (lockDoor by default) with a canned status and payload",
    async () => (await import('./answer-methods.js')).configureAnswerMethods,
  ],
  [
    'invoke-reboot',
    'dmpatterns_getstarted_service: invoke the rebootDevice direct method, show the answer, then wait for the reported rebootTime',
    async () => (await import('./invoke-reboot.js')).configureInvokeReboot,
  ],
  [
    'send-telemetry',
    "SimulatedDevice: send the tutorial's windSpeed messages (message id, correlation id, a Property) and count the hub's confirmations",
    async () => (await import('./send-telemetry.js')).configureSendTelemetry,
  ],
  [
    'monitor-events',
    "the tutorial's monitor: print the device-to-cloud messages the hub receives, read from its Event Hub-compatible endpoint",
    async () => (await import('./monitor-events.js')).configureMonitorEvents,
  ],
  [
    'send-c2d',
    'SendCloudToDeviceMessage: send a cloud-to-device message (message id, ack: full) and, with --wait-feedback, print its delivery feedback',
    async () => (await import('./send-c2d.js')).configureSendC2d,
  ],
  [
    'receive-c2d',
    'SimulatedDevice, receiving: print each cloud-to-device message with its properties as it arrives, until Ctrl-C',
    async () => (await import('./receive-c2d.js')).configureReceiveC2d,
  ],
  [
    'twin',
    "inspect twins: 'twin show' prints a device's or module's twin as the service sees it",
    async () => (await import('./twin.js')).configureTwin,
  ],
  [
    'invoke-method',
    'invoke any direct method on a device or module, with a JSON payload, and print its status and payload',
    async () => (await import('./invoke-method.js')).configureInvokeMethod,
  ],
  [
    'query',
    "run a query in IoT Hub's query language over device and module twins, page by page",
    async () => (await import('./query.js')).configureQuery,
  ],
  [
    'schedule-job',
    "the jobs tutorial's service: schedule a direct method or a twin update on every device a query selects, and follow it",
    async () => (await import('./schedule-job.js')).configureScheduleJob,
  ],
];

/**
 * Runs one command line (the words after `iothub-tut`) and resolves to its exit code: commander's
 * usage errors are 2, whatever escaped a command is one line. `bin/iothub-tut` runs it with the
 * process's own I/O and then exits; tests run it in-process with buffers and an environment of their own.
 */
export async function runCommandLine(args: string[], io: CliIo): Promise<number> {
  return withEnvironment(io.env, () =>
    asRun(io, async () => {
      const program = buildProgram(io);
      const requested = requestedCommand(program, args);
      for (const [name, description, load] of COMMANDS) {
        const command = program.command(name).description(description);
        if (name === requested) (await load())(command);
      }
      try {
        await program.parseAsync(args, { from: 'user' });
        return undefined;
      } catch (err) {
        if (err instanceof CommanderError) return err.exitCode === 1 ? 2 : err.exitCode;
        // Last resort: whatever escaped a command is still one line (the stack only with --verbose).
        const { Output } = await import('./output.js');
        return new Output({ verbose: args.includes('--verbose'), json: args.includes('--json') }).error(err);
      }
    }),
  );
}

function buildProgram(io: CliIo): Command {
  return (
    new Command('iothub-tut')
      .description('The Azure IoT Hub tutorials as one CLI, with a local IoT Hub that needs no Azure subscription')
      .version('0.1.0')
      .option('--json', 'machine-readable output (one JSON object per line)')
      .option('--show-secrets', 'show keys and connection strings instead of masking them')
      .option('--verbose', 'show stack traces with errors')
      .option(
        '--hub <data dir>',
        'the running local hub to use, by its data dir (or pid), when several run (default: the only one)',
        chooseHub,
      )
      .option('--no-color', 'plain output (also: NO_COLOR=1, or when stdout is not a terminal)')
      // Every command's --help lists these too, read from this program (so an option added here shows there).
      .configureHelp({ showGlobalOptions: true })
      .addHelpText('after', examples('demo', 'hub start', 'create-device -d myDeviceId --show-secrets'))
      .showHelpAfterError('(run with --help for usage)')
      .configureOutput({
        writeOut: (text) => io.stdout.write(text),
        writeErr: (text) => io.stderr.write(text),
        outputError: (text, write) => write(text),
      })
      // Help, --version and usage errors end the run (with a CommanderError) instead of the process.
      .exitOverride()
  );
}

/** The command a command line runs (or asks help for): its first word that is neither an option nor a global option's value. */
function requestedCommand(program: Command, args: string[]): string | undefined {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('-')) words.push(arg);
    else if (!arg.includes('=') && program.options.find((o) => o.short === arg || o.long === arg)?.required) i++;
  }
  return words[0] === 'help' ? words[1] : words[0];
}
