import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HubError } from '../../src/hub/errors.js';
import { executeQuery, type QueryPage, type TwinDocument } from '../../src/hub/query/index.js';
import { fleet } from '../helpers/query-fixtures.js';

const { devices, source } = fleet(300);

/** Every page of a query, in order. */
function pages(text: string, pageSize: number): QueryPage[] {
  const result: QueryPage[] = [];
  let continuationToken: string | undefined;
  do {
    const page = executeQuery(text, source, { pageSize, continuationToken });
    result.push(page);
    continuationToken = page.continuationToken;
    assert.ok(result.length <= devices.length, 'paging must end');
  } while (continuationToken);
  return result;
}

function assertArgumentInvalid(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof HubError, `expected a HubError, got ${String(e)}`);
    assert.equal(e.status, 400);
    assert.equal(e.errorCode, 400004);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

describe('query paging', () => {
  test('returns 100 results per page unless told otherwise', () => {
    const first = executeQuery('SELECT * FROM devices', source);
    assert.equal(first.items.length, 100);
    assert.equal(typeof first.continuationToken, 'string');
  });

  test('collects every match exactly once, in order, through the continuation tokens', () => {
    const text = "SELECT deviceId FROM devices WHERE connectionState = 'Connected' AND tags.location.region != 'APAC'";
    const expected = devices
      .filter(
        (d) =>
          d.connectionState === 'Connected' && ['US', 'EU'].includes((d.tags as { location?: { region: string } }).location?.region ?? ''),
      )
      .map((d) => ({ deviceId: d.deviceId }));
    assert.ok(expected.length > 7 * 5, 'enough matches for several pages');
    const all = pages(text, 7);
    assert.deepEqual(
      all.flatMap((p) => p.items),
      expected,
    );
    assert.ok(all.slice(0, -1).every((p) => p.items.length === 7 && p.continuationToken));
    assert.equal(all.at(-1)!.continuationToken, undefined);
  });

  test('gives no token after a last page that happens to be full', () => {
    const all = pages("SELECT * FROM devices WHERE STARTSWITH(deviceId, 'device-001')", 5);
    assert.deepEqual(
      all.map((p) => p.items.length),
      [5, 5],
    );
    assert.equal(all[1].continuationToken, undefined);
  });

  test('pages aggregate results computed over the whole set', () => {
    const all = pages('SELECT deviceId, COUNT() AS n FROM devices GROUP BY deviceId', 50);
    assert.equal(all.length, 6);
    const rows = all.flatMap((p) => p.items) as TwinDocument[];
    assert.deepEqual(
      rows.map((r) => r.deviceId),
      devices.map((d) => d.deviceId),
    );
    assert.ok(rows.every((r) => r.n === 1));
  });

  test('lets a client change the page size between pages', () => {
    const text = 'SELECT deviceId FROM devices';
    const first = executeQuery(text, source, { pageSize: 10 });
    const second = executeQuery(text, source, { pageSize: 3, continuationToken: first.continuationToken });
    assert.deepEqual(second.items, [{ deviceId: 'device-0010' }, { deviceId: 'device-0011' }, { deviceId: 'device-0012' }]);
  });

  test('rejects a continuation token from another query', () => {
    const { continuationToken } = executeQuery("SELECT * FROM devices WHERE status = 'enabled'", source, { pageSize: 10 });
    assert.ok(continuationToken);
    assertArgumentInvalid(
      () => executeQuery("SELECT * FROM devices WHERE status = 'disabled'", source, { pageSize: 10, continuationToken }),
      'The continuation token was issued for a different query',
    );
  });

  test('rejects a continuation token that is not one', () => {
    const forged = Buffer.from(JSON.stringify({ o: -5, q: 'x' })).toString('base64url');
    for (const continuationToken of ['not a token!', 'e30', forged]) {
      assertArgumentInvalid(
        () => executeQuery('SELECT * FROM devices', source, { continuationToken }),
        'The continuation token is not valid',
      );
    }
  });

  test('takes page sizes from 1 to 1000 only', () => {
    assert.equal(executeQuery('SELECT * FROM devices', source, { pageSize: 1000 }).items.length, devices.length);
    assert.equal(executeQuery('SELECT * FROM devices', source, { pageSize: 1 }).items.length, 1);
    for (const pageSize of [0, -1, 1001, 2.5, Number.NaN]) {
      assertArgumentInvalid(
        () => executeQuery('SELECT * FROM devices', source, { pageSize }),
        `Page size must be a whole number from 1 to 1000, not ${pageSize}`,
      );
    }
  });
});
