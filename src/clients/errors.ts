/** Exit codes the CLI promises (the README's error table lists them). */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  unauthorized: 4,
  timeout: 5,
  offline: 6,
  conflict: 7,
  unavailable: 8,
  tooLarge: 9,
} as const;

/** An error with a one-line message for the user and the exit code it maps to. */
export class ToolkitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.failure,
  ) {
    super(message);
    this.name = 'ToolkitError';
  }
}
