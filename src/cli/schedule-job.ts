import { InvalidArgumentError, type Command } from 'commander';
import { ExitCode, ToolkitError } from '../clients/errors.js';
import { run, type Output } from './output.js';
import { serviceConnection, serviceConnectionOption } from './options.js';
import { parseIntWithin, parseJsonObject, parseJsonValue, parseNonEmpty, parseSeconds } from './parsers.js';
import { untilInterrupted } from './interrupt.js';
import { examples } from './help.js';
import type { JobStatus } from '../apps/schedule-job.js';

interface ScheduleJobValues {
  method?: string;
  payload?: unknown;
  responseTimeout: number;
  desired?: string;
  query?: string;
  jobId?: string;
  start?: Date;
  maxSeconds: number;
  wait?: boolean;
  timeout: number;
  connectionString?: string;
}

export function configureScheduleJob(command: Command): void {
  command
    .option('--method <name>', 'schedule this direct method, e.g. lockDoor')
    .option('--payload <json>', 'the method payload: any JSON value (default: null)', parseJsonValue('--payload'))
    .option(
      '--response-timeout <s>',
      'seconds each device has to answer the method (5 to 300)',
      parseIntWithin('--response-timeout', 5, 300),
      30,
    )
    .option('--desired <json>', 'schedule a twin update of these desired properties instead, e.g. \'{"building":"43","floor":3}\'')
    .option(
      '--query <condition>',
      "which devices: a WHERE condition in IoT Hub's query language (default: every device)",
      parseNonEmpty('--query'),
    )
    .option('--job-id <id>', 'the job id: up to 64 letters, digits and dashes (default: a new UUID)', parseNonEmpty('--job-id'))
    .option('--start <time>', 'when the job starts, an ISO 8601 time such as 2026-01-01T12:00:00Z (default: now)', parseStart)
    .option('--max-seconds <s>', "the job's maximum execution time in seconds", parseIntWithin('--max-seconds', 1, 30 * 24 * 3600), 3600)
    .option('--wait', "print the job's progress until it ends (exit 1 if it failed, was cancelled, or a device failed)")
    .option(
      '--timeout <s>',
      'with --wait: give up waiting after this many seconds (exit 5; the job goes on)',
      parseSeconds('--timeout'),
      300,
    );
  serviceConnectionOption(command)
    .addHelpText(
      'after',
      examples(
        `schedule-job --method lockDoor --payload '{}' --query "deviceId IN ['myDeviceId']" --wait`,
        `schedule-job --desired '{"building":"43","floor":3}' --query "tags.building = '43'" --wait --json`,
        'schedule-job --method rebootDevice --start 2026-01-01T02:00:00Z --max-seconds 600',
      ),
    )
    .action((opts: ScheduleJobValues, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        if (!opts.method === !opts.desired) throw new ToolkitError('give either --method <name> or --desired <json>', ExitCode.usage);
        if (opts.payload !== undefined && !opts.method) throw new ToolkitError('--payload goes with --method', ExitCode.usage);
        const connection = serviceConnection(opts);
        const { scheduleJob, watchJob } = await import('../apps/schedule-job.js');
        const scheduled = await scheduleJob(connection, {
          jobId: opts.jobId,
          queryCondition: opts.query,
          method: opts.method
            ? { methodName: opts.method, payload: opts.payload ?? null, responseTimeoutInSeconds: opts.responseTimeout }
            : undefined,
          desired: opts.desired ? parseJsonObject('--desired', opts.desired) : undefined,
          startTime: opts.start,
          maxExecutionTimeInSeconds: opts.maxSeconds,
        });
        out.heading(`Job ${scheduled.jobId}`);
        out.field('Type', scheduled.type);
        out.field('Devices', scheduled.queryCondition);
        out.field('Start', scheduled.startTime);
        if (!opts.wait) {
          out.result(scheduled);
          out.field('Status', scheduled.status);
          return;
        }
        const job = await untilInterrupted((signal) =>
          watchJob(connection, scheduled.jobId, {
            timeoutSeconds: opts.timeout,
            signal,
            onProgress: (progress) => printProgress(out, progress),
          }),
        );
        out.result(job);
        const stats = job.deviceJobStatistics;
        if (job.status !== 'completed') {
          const why = job.failureReason ? `: ${job.failureReason}` : '';
          throw new ToolkitError(`job '${job.jobId}' ended ${job.status}${why}`, ExitCode.failure);
        }
        if (stats && stats.failedCount > 0) {
          throw new ToolkitError(
            `job '${job.jobId}' completed, and ${stats.failedCount} of ${stats.deviceCount} device(s) failed; see why with: query "SELECT * FROM devices.jobs WHERE jobId = '${job.jobId}'"`,
            ExitCode.failure,
          );
        }
      }),
    );
}

export function printProgress(out: Output, job: JobStatus): void {
  const s = job.deviceJobStatistics;
  const counts = s
    ? ` (${s.deviceCount} devices: ${s.succeededCount} succeeded, ${s.failedCount} failed, ${s.runningCount} running, ${s.pendingCount} pending)`
    : '';
  out.line(`  ${job.status}${counts}`);
}

function parseStart(text: string): Date {
  const time = Date.parse(text);
  if (Number.isNaN(time)) throw new InvalidArgumentError('--start must be an ISO 8601 time, like 2026-01-01T12:00:00Z.');
  return new Date(time);
}
