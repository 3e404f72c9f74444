import { loadOnFirstUse } from '../load-on-first-use.js';

/** rhea, loaded with the hub's first AMQP connection (either port); its types are imported as types only. */
export const rhea = loadOnFirstUse<typeof import('rhea')>('rhea');
