/**
 * Runs a long-running app with a signal that Ctrl-C (SIGINT) and SIGTERM abort, so that it closes
 * its connections and returns what it has done; the default handling of both is back afterwards.
 */
export async function untilInterrupted<T>(app: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  process.once('SIGINT', abort).once('SIGTERM', abort);
  try {
    return await app(controller.signal);
  } finally {
    process.off('SIGINT', abort).off('SIGTERM', abort);
  }
}
