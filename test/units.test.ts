// The unit tests (test/units/): no hub, no sockets.
import { runTogether } from './helpers/together.js';

runTogether(new URL('./units/', import.meta.url), 4);
