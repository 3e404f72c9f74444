import { test, describe, mock, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { callAt, MAX_TIMER_MS } from '../src/hub/auth/token-expiry.js';

// A connection is closed when its SAS token expires, however long the token is valid: setTimeout
// cannot wait more than 2^31-1 ms (~24.8 days), so the wait is chained.

const DAY_MS = 24 * 60 * 60 * 1000;

describe('token expiry timers', () => {
  afterEach(() => mock.timers.reset());

  test('a token valid for 40 days expires after 40 days, not before, waited in steps setTimeout can take', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.UTC(2026, 0, 1) });
    const setTimeoutSpy = mock.method(globalThis, 'setTimeout');
    let expired = 0;
    callAt(Date.now() + 40 * DAY_MS, () => expired++);

    mock.timers.tick(MAX_TIMER_MS);
    assert.equal(expired, 0, "still valid after setTimeout's longest delay");
    mock.timers.tick(40 * DAY_MS - MAX_TIMER_MS - 1);
    assert.equal(expired, 0, 'still valid 1 ms before its expiry');
    mock.timers.tick(1);
    assert.equal(expired, 1, 'expired at its expiry');
    mock.timers.tick(100 * DAY_MS);
    assert.equal(expired, 1, 'and only once');

    setTimeoutSpy.mock.restore(); // before the timers' own reset, which puts the real setTimeout back
    const delays = setTimeoutSpy.mock.calls.map((call) => call.arguments[1] as number);
    assert.ok(delays.length >= 2, `the wait was chained (${delays.length} timers)`);
    assert.ok(
      delays.every((ms) => ms >= 0 && ms <= MAX_TIMER_MS),
      `every delay within setTimeout's range: ${delays.join(', ')}`,
    );
  });

  test('a token valid for 10 years is still timed', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.UTC(2026, 0, 1) });
    let expired = 0;
    const expiry = Date.now() + 3652 * DAY_MS;
    callAt(expiry, () => expired++);
    mock.timers.tick(3652 * DAY_MS - 1);
    assert.equal(expired, 0);
    mock.timers.tick(1);
    assert.equal(expired, 1);
  });

  test('a cancelled expiry never fires, even part-way through its chain', () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.UTC(2026, 0, 1) });
    let expired = 0;
    const cancel = callAt(Date.now() + 60 * DAY_MS, () => expired++);
    mock.timers.tick(30 * DAY_MS);
    cancel();
    mock.timers.tick(60 * DAY_MS);
    assert.equal(expired, 0);
  });

  test('with real timers and a small step, the chain ends at the expiry, once, and never synchronously', async () => {
    const started = Date.now();
    const target = started + 60;
    let firedAt = 0;
    let calls = 0;
    const keepAlive = setTimeout(() => assert.fail('the expiry never came'), 10_000); // callAt's own timers are unref'd
    await new Promise<void>((resolve) => {
      callAt(
        target,
        () => {
          calls++;
          firedAt = Date.now();
          resolve();
        },
        5,
      );
      assert.equal(calls, 0, 'not called synchronously');
    });
    assert.equal(calls, 1);
    assert.ok(firedAt >= target, `fired ${target - firedAt} ms early`);
    // An expiry already past fires on a later turn, not inside the call.
    let past = 0;
    callAt(Date.now() - 1000, () => past++);
    assert.equal(past, 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(past, 1);
    clearTimeout(keepAlive);
  });
});
