/** setTimeout's longest delay: a longer one fires at once (Node warns of an overflow and uses 1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `onExpiry` when the clock reaches `atMs` (epoch milliseconds), however far ahead that is: a
 * SAS token may be valid for years, past setTimeout's ~24.8 days, so the wait is chained in steps of at
 * most `maxStepMs`, each checking the clock again. Never calls back synchronously; the timers do not
 * keep the process alive. Returns the function that cancels it.
 */
export function callAt(atMs: number, onExpiry: () => void, maxStepMs = MAX_TIMER_MS): () => void {
  let timer: NodeJS.Timeout;
  const wait = () => {
    timer = setTimeout(step, Math.min(Math.max(atMs - Date.now(), 0), maxStepMs));
    timer.unref();
  };
  const step = () => (Date.now() >= atMs ? onExpiry() : wait());
  wait();
  return () => clearTimeout(timer);
}
