import type { Command } from 'commander';
import { run } from './output.js';
import { serviceConnection, serviceConnectionOption } from './options.js';
import { parsePositiveInt } from './parsers.js';
import { untilInterrupted } from './interrupt.js';
import { examples } from './help.js';

export function configureQuery(command: Command): void {
  command
    .argument('<query>', 'a query in IoT Hub\'s query language, e.g. "SELECT * FROM devices WHERE tags.floor = 3"')
    .option('--top <n>', 'at most this many results (default: all)', parsePositiveInt('--top'))
    .option('--page-size <n>', "results per page the hub sends (default: the hub's)", parsePositiveInt('--page-size'));
  serviceConnectionOption(command)
    .addHelpText(
      'after',
      examples(
        'query "SELECT * FROM devices"',
        `query "SELECT deviceId, properties.reported.rebootTime FROM devices WHERE IS_DEFINED(properties.reported.rebootTime)" --json`,
        `query "SELECT * FROM devices.modules WHERE deviceId = 'myFirstDevice'" --top 10 --page-size 5`,
      ),
    )
    .action((sql: string, opts: { top?: number; pageSize?: number; connectionString?: string }, cmd: Command) =>
      run(cmd.optsWithGlobals(), async (out) => {
        const connection = serviceConnection(opts);
        const { runQuery } = await import('../apps/query.js');
        const summary = await untilInterrupted((signal) =>
          runQuery(connection, {
            sql,
            top: opts.top,
            pageSize: opts.pageSize,
            signal,
            onPage: (results) => {
              for (const result of results) {
                out.result(result);
                out.line(JSON.stringify(result, null, 2));
              }
            },
          }),
        );
        const more = summary.truncated ? ` (--top ${opts.top} reached; the hub has more)` : '';
        out.line(
          out.color.dim(
            `${summary.results} result${summary.results === 1 ? '' : 's'} in ${summary.pages} page${summary.pages === 1 ? '' : 's'}${more}`,
          ),
        );
      }),
    );
}
