// The hub's suites (test/hub/): a hub in this process, the official SDK clients over real sockets.
import { runTogether } from './helpers/together.js';

runTogether(new URL('./hub/', import.meta.url), 6);
