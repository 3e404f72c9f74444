import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { TurnBudget } from '../src/hub/device-gateway/turn-budget.js';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

test('a connection over its budget waits for the next turn, in order, while others run now', async () => {
  const turns = new TurnBudget<object>(2);
  const [noisy, quiet] = [{}, {}];
  const ran: string[] = [];
  const job =
    (name: string, ms = 0) =>
    () => {
      busy(ms);
      ran.push(name);
    };
  turns.run(noisy, job('noisy 1', 3)); // spends its budget for this turn
  turns.run(noisy, job('noisy 2', 3));
  turns.run(noisy, job('noisy 3', 3));
  turns.run(quiet, job('quiet 1'));
  assert.deepEqual(ran, ['noisy 1', 'quiet 1']);
  await nextTurn();
  assert.deepEqual(ran, ['noisy 1', 'quiet 1', 'noisy 2']);
  await nextTurn();
  assert.deepEqual(ran, ['noisy 1', 'quiet 1', 'noisy 2', 'noisy 3']);
});

test('cheap requests run at once, many a turn; a dropped connection leaves nothing to run', async () => {
  // The budget counts the clock, not the CPU: a generous one, as a busy machine may pause this process mid-loop.
  const generous = new TurnBudget<object>(1000);
  const cheap = {};
  let count = 0;
  for (let i = 0; i < 100; i++) generous.run(cheap, () => count++);
  assert.equal(count, 100, 'a budget of time, not of requests');

  const turns = new TurnBudget<object>(2);
  const closed = {};
  turns.run(closed, () => busy(3));
  turns.run(closed, () => assert.fail('a dropped connection ran a job'));
  turns.drop(closed);
  await nextTurn();
  await nextTurn();
});
