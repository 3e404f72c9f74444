// The user flows (test/cli/): the CLI and `hub start` as real subprocesses.
import { runTogether } from './helpers/together.js';

runTogether(new URL('./cli/', import.meta.url), 4);
