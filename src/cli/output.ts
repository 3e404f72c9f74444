import { Chalk, type ChalkInstance } from 'chalk';
import { ExitCode } from '../clients/errors.js';
import { environment } from '../clients/environment.js';
import { explain } from '../clients/sdk-errors.js';
import { cliIo, setExitCode } from './io.js';

export interface GlobalOptions {
  json?: boolean;
  showSecrets?: boolean;
  verbose?: boolean;
  color?: boolean;
}

/** Patterns of secrets inside free text: keys and signatures in connection strings and SAS tokens. */
const SECRET_IN_TEXT = /((?:SharedAccessKey|sig)=)([^;&\s"]+)/g;

/** Fields of a --json result that hold secrets. */
const SECRET_FIELD = /^(primaryKey|secondaryKey|sharedAccessKey|connectionString|serviceConnectionString|eventHubConnectionString)$/i;

/** How every command prints: colored text on a terminal, plain text elsewhere, JSON with --json; secrets masked unless asked for. */
export class Output {
  readonly color: ChalkInstance;

  constructor(readonly options: GlobalOptions) {
    const enabled = options.color !== false && !environment().NO_COLOR && cliIo().stdout.isTTY === true;
    this.color = new Chalk({ level: enabled ? 1 : 0 });
  }

  get json(): boolean {
    return this.options.json === true;
  }

  /** A key or a whole connection string, masked unless --show-secrets. */
  secret(value: string): string {
    if (this.options.showSecrets) return value;
    if (value.includes('=') && value.includes(';')) return this.maskText(value);
    return value.length > 8 ? `${value.slice(0, 4)}…(hidden)` : '…(hidden)';
  }

  maskText(text: string): string {
    return this.options.showSecrets
      ? text
      : text.replace(SECRET_IN_TEXT, (_, key: string, value: string) => `${key}${value.slice(0, 4)}…(hidden)`);
  }

  line(text = ''): void {
    if (!this.json) cliIo().stdout.write(this.maskText(text) + '\n');
  }

  heading(text: string): void {
    this.line(this.color.bold.cyan(text));
  }

  field(name: string, value: unknown): void {
    this.line(`  ${this.color.dim(name.padEnd(18))} ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }

  /** One JSON document per call with --json (one object a line, for scripts); secret fields masked unless --show-secrets. */
  result(value: unknown): void {
    if (!this.json) return;
    const replacer = (key: string, v: unknown) => (typeof v === 'string' && SECRET_FIELD.test(key) ? this.secret(v) : v);
    cliIo().stdout.write(this.maskText(JSON.stringify(value, this.options.showSecrets ? undefined : replacer)) + '\n');
  }

  /** A one-line error on stderr; the stack only with --verbose. */
  error(err: unknown): number {
    const error = explain(err);
    const text = this.maskText(error.message);
    const { stdout, stderr } = cliIo();
    if (this.json) stdout.write(JSON.stringify({ error: text, exitCode: error.exitCode }) + '\n');
    stderr.write(`${this.color.red('error:')} ${text}\n`);
    if (this.options.verbose && err instanceof Error && err.stack) stderr.write(this.maskText(err.stack) + '\n');
    return error.exitCode;
  }
}

/** Runs a command's action: any error becomes one line and the exit code that goes with it. */
export async function run(options: GlobalOptions, action: (out: Output) => Promise<number | void>): Promise<void> {
  const out = new Output(options);
  try {
    setExitCode((await action(out)) ?? ExitCode.ok);
  } catch (err) {
    setExitCode(out.error(err));
  }
}
