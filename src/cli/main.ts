import { Command } from 'commander';
import { Output } from './output.js';
import { registerHub } from './hub.js';
import { registerDemo } from './demo.js';
import { registerCreateDevice } from './create-device.js';
import { registerCreateModule } from './create-module.js';
import { registerUpdateModuleTwin } from './update-module-twin.js';
import { registerReceiveTwinPatch } from './receive-twin-patch.js';
import { registerUpdateReported } from './update-reported.js';
import { registerRebootDevice } from './reboot-device.js';
import { registerInvokeReboot } from './invoke-reboot.js';
import { registerSendTelemetry } from './send-telemetry.js';
import { registerMonitorEvents } from './monitor-events.js';

// Each command loads its SDK only when it runs, so `--help` and light commands start fast.
const program = new Command('iothub-tut')
  .description('The Azure IoT Hub tutorials as one CLI, with a local IoT Hub that needs no Azure subscription')
  .version('0.1.0')
  .option('--json', 'machine-readable output (one JSON object per line)')
  .option('--show-secrets', 'show keys and connection strings instead of masking them')
  .option('--verbose', 'show stack traces with errors')
  .option('--no-color', 'plain output (also: NO_COLOR=1, or when stdout is not a terminal)')
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ outputError: (text, write) => write(text) })
  .exitOverride((err) => process.exit(err.exitCode === 1 ? 2 : err.exitCode));

registerHub(program);
registerDemo(program);
registerCreateDevice(program);
registerCreateModule(program);
registerUpdateModuleTwin(program);
registerReceiveTwinPatch(program);
registerUpdateReported(program);
registerRebootDevice(program);
registerInvokeReboot(program);
registerSendTelemetry(program);
registerMonitorEvents(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Last resort: whatever escaped a command is still one line (the stack only with --verbose).
  process.exitCode = new Output({ verbose: process.argv.includes('--verbose'), json: process.argv.includes('--json') }).error(err);
}
// A closed device client can leave the SDK's reconnect timers behind (when the hub went away
// mid-session); a command that has finished exits instead of waiting on them.
process.exit();
