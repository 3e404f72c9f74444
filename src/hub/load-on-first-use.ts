import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS package loaded when first asked for, not when the hub is imported: the hub starts
 * without the protocols nobody has used yet (rhea, ws: ~0.1 CPU-s each to load), and the first
 * connection of a kind pays for its package, synchronously, so that nothing waits or is reordered.
 */
export function loadOnFirstUse<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}
