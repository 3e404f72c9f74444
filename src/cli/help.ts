/** An "Examples:" section for a command's --help (commander's addHelpText('after', ...)), one command line each. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ iothub-tut ${line}`).join('\n')}\n`;
}
