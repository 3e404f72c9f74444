// The dashboard's server side over real HTTPS: sign-in, what an outsider sees, CSRF and Host checks,
// the REST API through the session's policy, the read model without keys, and the live events.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startTestHub, tempDir, type TestHub } from '../helpers/hub.js';
import { CliProcess } from '../helpers/cli.js';
import { openDevice, registerIdentity, until } from '../helpers/devices.js';
import { createLog, type LogLine } from '../../src/hub/log.js';
import deviceSdk from 'azure-iot-device';
import { createRegistry } from '../../src/clients/service-clients.js';
import { Throttle } from '../../src/hub/throttling.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

interface Call {
  method?: string;
  cookie?: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/** A browser-like call: the page's header and origin on state-changing calls unless `headers` says otherwise. */
function call(t: TestHub, path: string, { method = 'GET', cookie, headers, body }: Call = {}): Promise<Reply> {
  const origin = `https://localhost:${t.hub.port}`;
  const pageHeaders: Record<string, string> = method === 'GET' ? {} : { 'X-Iothub-Tut-Ui': '1', Origin: origin };
  const allHeaders: Record<string, string> = {
    Host: `localhost:${t.hub.port}`,
    ...pageHeaders,
    ...(cookie ? { Cookie: cookie } : {}),
    ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    ...headers,
  };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: t.hub.port, method, path, ca: t.hub.tls.ca, servername: 'localhost', headers: allHeaders },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
      },
    );
    req.on('error', reject).end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Spends a login link; returns the Cookie header for the session and the Set-Cookie it came with. */
async function signIn(t: TestHub, link = t.hub.dashboard.loginUrl()): Promise<{ cookie: string; setCookie: string }> {
  const url = new URL(link);
  const reply = await call(t, url.pathname + url.search);
  assert.equal(reply.status, 303);
  assert.equal(reply.headers.location, '/ui/');
  const setCookie = reply.headers['set-cookie']![0];
  return { cookie: setCookie.split(';')[0], setCookie };
}

async function withHub(fn: (t: TestHub, log: LogLine[]) => Promise<void>): Promise<void> {
  const lines: LogLine[] = [];
  const t = await startTestHub({ log: createLog('info', (line) => lines.push({ time: '', level: 'info', area: 'hub', message: line })) });
  try {
    await fn(t, lines);
  } finally {
    await t.dispose();
  }
}

test("hub start prints the dashboard's login link, in full, beside the masked connection strings", async () => {
  const home = tempDir('iothub-tut-cli-');
  const hub = new CliProcess(['hub', 'start', '--port', '0', '--amqp-port', '0', '--in-memory'], { IOTHUB_TUT_HOME: home });
  try {
    const line: string = await hub.waitFor((l) => typeof l === 'string' && l.includes('Dashboard'));
    assert.match(line, /^ {2}Dashboard +https:\/\/localhost:\d+\/ui\/\?token=[A-Za-z0-9_-]{43}$/);
    assert.ok(
      hub.lines.some(
        (l) =>
          typeof l === 'string' &&
          /Connection string +HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=.{4}…\(hidden\)$/.test(l),
      ),
    );
  } finally {
    await hub.stop();
    rmSync(home, { recursive: true, force: true });
  }
});

test('without a session nothing of the hub is shown: the page, its scripts, its API, its REST and its stream all answer 401', () =>
  withHub(async (t) => {
    await createRegistry(t.connection).create({ deviceId: 'secretDevice' });
    const forged = `__Secure-iothub-tut-ui-${t.hub.port}=${'A'.repeat(43)}`;
    for (const cookie of [undefined, forged]) {
      const page = await call(t, '/ui/', { cookie });
      assert.equal(page.status, 401);
      assert.match(page.text, /Open the URL that <code>iothub-tut hub start<\/code> printed/);
      for (const path of [
        '/ui/main.js',
        '/ui/views/devices.js',
        '/ui/api/devices',
        '/ui/api/overview',
        '/ui/api/live',
        '/ui/api/telemetry',
        '/ui/api/rest/devices',
      ]) {
        const reply = await call(t, path, { cookie });
        assert.equal(reply.status, 401, path);
        assert.doesNotMatch(reply.text, /secretDevice/, path);
      }
      const write = await call(t, '/ui/api/rest/devices/intruder', { method: 'PUT', cookie, body: { deviceId: 'intruder' } });
      assert.equal(write.status, 401);
    }
    assert.equal(t.hub.registry.find('intruder'), undefined);
  }));

test('the login link signs in once, into an HttpOnly, Secure, SameSite=Strict cookie scoped to /ui; signing out ends it', () =>
  withHub(async (t, lines) => {
    const url = new URL(t.hub.dashboard.loginUrl());
    const { cookie, setCookie } = await signIn(t, url.href);
    assert.match(setCookie, new RegExp(`^__Secure-iothub-tut-ui-${t.hub.port}=[A-Za-z0-9_-]{43}; `));
    for (const attribute of ['Path=/ui', 'Secure', 'HttpOnly', 'SameSite=Strict'])
      assert.ok(setCookie.split('; ').includes(attribute), attribute);
    assert.equal((await call(t, '/ui/', { cookie })).status, 200);
    assert.equal((await call(t, '/ui/api/devices', { cookie })).status, 200);

    // The same link a second time: spent.
    const again = await call(t, url.pathname + url.search);
    assert.equal(again.status, 401);
    assert.equal(again.headers['set-cookie'], undefined);
    assert.ok(
      lines.some((l) => /ui: GET \/ui\/\?token=\*\*\*: refused, a login token that is spent/.test(l.message)),
      'the refusal is logged, without the token',
    );
    assert.ok(!lines.some((l) => l.message.includes(url.searchParams.get('token')!)), 'no log line holds the token');

    const out = await call(t, '/ui/api/sign-out', { method: 'POST', cookie, body: {} });
    assert.equal(out.status, 200);
    assert.match(out.headers['set-cookie']![0], /Max-Age=0/);
    assert.equal((await call(t, '/ui/api/devices', { cookie })).status, 401, 'the old cookie opens nothing');
  }));

test('a restarted hub knows no cookie from before', async () => {
  const t = await startTestHub();
  const { cookie } = await signIn(t);
  await t.stop();
  const restarted = await startTestHub({ dataDir: t.dataDir });
  try {
    const old = cookie.replace(/-\d+=/, `-${restarted.hub.port}=`);
    assert.equal((await call(restarted, '/ui/api/devices', { cookie: old })).status, 401);
  } finally {
    await restarted.dispose();
  }
});

test("CSRF and DNS rebinding: a state-changing call needs the page's header and origin; a foreign Host or site is refused", () =>
  withHub(async (t) => {
    const { cookie } = await signIn(t);
    const create = (id: string, headers: Record<string, string>) =>
      call(t, `/ui/api/rest/devices/${id}`, { method: 'PUT', cookie, body: { deviceId: id }, headers });
    assert.equal((await create('noHeader', { 'X-Iothub-Tut-Ui': '' })).status, 403);
    assert.equal((await create('otherOrigin', { Origin: 'https://evil.example' })).status, 403);
    assert.equal((await create('otherSite', { 'Sec-Fetch-Site': 'cross-site' })).status, 403);
    // Another web app on localhost is the same site to cookies (SameSite does not look at ports): not the same origin.
    assert.equal((await create('otherPort', { Origin: 'https://localhost:3000' })).status, 403);
    assert.equal((await create('sameSite', { 'Sec-Fetch-Site': 'same-site' })).status, 403);
    assert.equal((await call(t, '/ui/api/devices', { cookie, headers: { 'Sec-Fetch-Site': 'same-site' } })).status, 403);
    assert.equal((await create('otherHost', { Host: 'evil.example' })).status, 403);
    assert.equal((await call(t, '/ui/api/devices', { cookie, headers: { Host: `rebound.example:${t.hub.port}` } })).status, 403);
    assert.equal(
      (await call(t, '/ui/api/connection-string', { method: 'POST', cookie, body: { deviceId: 'x' }, headers: { 'X-Iothub-Tut-Ui': '' } }))
        .status,
      403,
    );
    for (const id of ['noHeader', 'otherOrigin', 'otherSite', 'otherPort', 'sameSite', 'otherHost'])
      assert.equal(t.hub.registry.find(id), undefined, id);

    const created = await create('fromThePage', {});
    assert.equal(created.status, 200);
    assert.ok(t.hub.registry.find('fromThePage'));
  }));

test("the page calls the hub's own REST API with the session's policy; the REST API itself takes no cookie", () =>
  withHub(async (t) => {
    const { cookie } = await signIn(t);
    const put = await call(t, '/ui/api/rest/devices/d1', { method: 'PUT', cookie, body: { deviceId: 'd1' } });
    assert.equal(put.status, 200);
    assert.equal(JSON.parse(put.text).deviceId, 'd1');
    assert.match(String(put.headers['iothub-tracking-id']), /^[0-9a-f]{32}$/, 'answered by the REST handler');

    const twin = JSON.parse((await call(t, '/ui/api/rest/twins/d1', { cookie })).text);
    const patch = { properties: { desired: { telemetryInterval: 5 } } };
    const stale = await call(t, '/ui/api/rest/twins/d1', {
      method: 'PATCH',
      cookie,
      body: patch,
      headers: { 'If-Match': '"AAAAAAAAAAA="' },
    });
    assert.equal(stale.status, 412);
    assert.equal(JSON.parse(stale.text).errorCode, 412002);
    const fresh = await call(t, '/ui/api/rest/twins/d1', {
      method: 'PATCH',
      cookie,
      body: patch,
      headers: { 'If-Match': `"${twin.etag}"` },
    });
    assert.equal(fresh.status, 200);
    assert.equal(JSON.parse(fresh.text).properties.desired.telemetryInterval, 5);

    const direct = await call(t, '/devices/d1', { cookie });
    assert.equal(direct.status, 401, 'the cookie is no credential for the REST API');
  }));

test('the device list holds no keys and shows the live connection; a connection string comes one at a time, on request', () =>
  withHub(async (t) => {
    const { cookie } = await signIn(t);
    const device = await openDevice(await registerIdentity(t, 'live1'));
    await createRegistry(t.connection).addModule({ deviceId: 'live1', moduleId: 'mod1' });
    try {
      const record = t.hub.registry.get('live1');
      await until(() => t.hub.mqtt.session({ deviceId: 'live1' }) !== undefined, 'live1 is connected');
      const list = await call(t, '/ui/api/devices', { cookie });
      assert.doesNotMatch(list.text, new RegExp(record.primaryKey.replace(/[+/=]/g, '.')));
      assert.doesNotMatch(list.text, /primaryKey|SharedAccessKey/);
      const rows = JSON.parse(list.text);
      assert.deepEqual(
        rows.map((r: any) => [r.deviceId, r.moduleId, r.connectionState]),
        [
          ['live1', undefined, 'Connected'],
          ['live1', 'mod1', 'Disconnected'],
        ],
      );
      assert.equal(rows[0].authenticationType, 'sas');
      assert.equal(rows[0].status, 'enabled');

      const asked = await call(t, '/ui/api/connection-string', { method: 'POST', cookie, body: { deviceId: 'live1', moduleId: 'mod1' } });
      assert.equal(asked.status, 200);
      const moduleKey = t.hub.registry.get('live1', 'mod1').primaryKey;
      assert.equal(JSON.parse(asked.text).connectionString, `HostName=localhost;DeviceId=live1;ModuleId=mod1;SharedAccessKey=${moduleKey}`);
      assert.equal((await call(t, '/ui/api/connection-string', { method: 'POST', cookie, body: { deviceId: 'nosuch' } })).status, 404);
    } finally {
      await device.close();
    }
  }));

test("only the page's own files are served, with a strict content security policy; nothing outside /ui/", () =>
  withHub(async (t) => {
    const { cookie } = await signIn(t);
    const page = await call(t, '/ui/', { cookie });
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.match(page.text, /<script type="module" src="\/ui\/main.js">/);
    const script = await call(t, '/ui/main.js', { cookie });
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /^text\/javascript/);
    for (const path of [
      '/ui/../package.json',
      '/ui/%2e%2e/package.json',
      '/ui/main.js.map',
      '/ui/main.ts',
      '/ui/nosuch.js',
      '/ui/.hidden.js',
    ]) {
      const reply = await call(t, path, { cookie });
      assert.equal(reply.status, 404, path);
      assert.doesNotMatch(reply.text, /"name": "iothub-tut"/, path);
    }
  }));

/** Reads the server-sent events of /ui/api/live as they come. */
function liveEvents(t: TestHub, cookie: string) {
  const events: Array<{ event: string; data: any }> = [];
  const state = { ended: false };
  let buffer = '';
  const req = request({
    host: '127.0.0.1',
    port: t.hub.port,
    path: '/ui/api/live',
    ca: t.hub.tls.ca,
    servername: 'localhost',
    headers: { Host: `localhost:${t.hub.port}`, Cookie: cookie },
  });
  const opened = new Promise<void>((resolve, reject) => {
    req.on('error', reject).on('response', (res) => {
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      res.setEncoding('utf8');
      res.on('end', () => (state.ended = true));
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      });
      resolve();
    });
  });
  req.end();
  const waitFor = async (what: string, predicate: (e: { event: string; data: any }) => boolean) => {
    await until(() => events.some(predicate), what);
    return events.find(predicate)!;
  };
  return { events, state, opened, waitFor, close: () => req.destroy() };
}

test('live: device list changes, twin writes, telemetry and hub log errors arrive as server-sent events', () =>
  withHub(async (t) => {
    const { cookie } = await signIn(t);
    const live = liveEvents(t, cookie);
    try {
      await live.opened;
      await live.waitFor('the first device list', (e) => e.event === 'devices');
      await live.waitFor('the backlog', (e) => e.event === 'backlog');

      const device = await openDevice(await registerIdentity(t, 'sensor'));
      try {
        await live.waitFor(
          'sensor connected',
          (e) => e.event === 'devices' && e.data.some((d: any) => d.deviceId === 'sensor' && d.connectionState === 'Connected'),
        );

        const deviceTwin = await device.getTwin();
        await new Promise<void>((resolve, reject) =>
          deviceTwin.properties.reported.update({ firmware: '1.2.3' }, (err?: Error) => (err ? reject(err) : resolve())),
        );
        const twin = await live.waitFor('a twin write', (e) => e.event === 'twin' && e.data.deviceId === 'sensor');
        assert.equal(twin.data.version, 2);

        const sent = new deviceSdk.Message(JSON.stringify({ windSpeed: 13.5 }));
        sent.messageId = 'message_1';
        sent.properties.add('Property', 'PropMsg_1');
        await device.sendEvent(sent);
        const telemetry = await live.waitFor('a message', (e) => e.event === 'telemetry');
        const [message] = telemetry.data;
        assert.equal(message.deviceId, 'sensor');
        assert.deepEqual(message.body.json, { windSpeed: 13.5 });
        assert.equal(message.properties.Property, 'PropMsg_1');
        assert.equal(message.systemProperties.messageId, 'message_1');
        assert.equal(message.systemProperties['iothub-connection-device-id'], 'sensor');
        assert.ok(Date.parse(message.enqueuedTime) > Date.now() - 60_000);
      } finally {
        await device.close();
      }

      t.hub.log.error('store', 'could not write for HostName=localhost;SharedAccessKey=c2VjcmV0;DeviceId=d1');
      const logged = await live.waitFor('an error line', (e) => e.event === 'log');
      assert.equal(logged.data.level, 'error');
      assert.equal(logged.data.message, 'could not write for HostName=localhost;SharedAccessKey=***;DeviceId=d1');

      const overview = JSON.parse((await call(t, '/ui/api/overview', { cookie })).text);
      assert.equal(overview.ports.tls, t.hub.port);
      assert.equal(overview.ports.eventHub, t.hub.eventHubPort);
      assert.equal(overview.telemetry.sinceStart, 1);
      assert.equal(overview.counts.devices, 1);
      assert.equal(overview.connections.dashboardStreams, 1);
      assert.deepEqual(overview.cloudToDevice, {}, 'no cloud-to-device message is queued');
      assert.equal(overview.recentProblems.at(-1).message, 'could not write for HostName=localhost;SharedAccessKey=***;DeviceId=d1');

      // Signing out ends the session's stream too.
      await call(t, '/ui/api/sign-out', { method: 'POST', cookie, body: {} });
      await until(() => live.state.ended, 'the stream ends');
    } finally {
      live.close();
    }
  }));

test("the package ships the page's files (scripts, HTML, CSS), without source maps", () => {
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  const packed = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  assert.equal(packed.status, 0, packed.stderr);
  const files: string[] = JSON.parse(packed.stdout)[0].files.map((f: { path: string }) => f.path);
  for (const file of ['index.html', 'signed-out.html', 'style.css', 'main.js', 'chart.js', 'views/telemetry.js']) {
    assert.ok(files.includes(`dist/src/ui/${file}`), file);
  }
  assert.ok(!files.some((f) => f.startsWith('dist/src/ui/') && (f.endsWith('.map') || f.endsWith('.ts'))));
});

test('the hub log keeps its latest warnings and errors (masked, bounded), whatever its level', () => {
  const log = createLog('error', () => undefined);
  log.info('rest', 'an info line is not kept');
  log.warn('mqtt', 'a warning is kept below the level');
  for (let i = 0; i < 60; i++) log.error('store', `error ${i} sig=abcdef`);
  const lines = log.recent.lines();
  assert.equal(lines.length, log.recent.capacity);
  assert.ok(!lines.some((l) => l.level === 'info'));
  assert.equal(lines.at(-1)!.message, 'error 59 sig=***');
  assert.equal(lines[0].message, 'error 10 sig=***');
});

test('cloud-to-device: the page queues a message for a device (IoT Hub refusals as its errors) and the overview counts each queue', () =>
  withHub(async (t, log) => {
    const { cookie } = await signIn(t);
    await registerIdentity(t, 'c2dTarget');
    const send = async (body: unknown) => {
      const reply = await call(t, '/ui/api/c2d', { method: 'POST', cookie, body });
      return { status: reply.status, body: JSON.parse(reply.text) };
    };

    const sent = await send({ deviceId: 'c2dTarget', message: 'Cloud to device message.', ack: 'full' });
    assert.equal(sent.status, 200);
    assert.equal(sent.body.depth, 1);
    const [queued] = t.hub.c2d.pending('c2dTarget');
    assert.equal(queued.messageId, sent.body.messageId);
    assert.equal(queued.ack, 'full');
    assert.equal(queued.body.toString(), 'Cloud to device message.');
    const overview = JSON.parse((await call(t, '/ui/api/overview', { cookie })).text);
    assert.deepEqual(overview.cloudToDevice, { c2dTarget: 1 });

    const missing = await send({ deviceId: 'nobody', message: 'x' });
    assert.deepEqual([missing.status, missing.body.errorCode], [404, 404001]);
    const badAck = await send({ deviceId: 'c2dTarget', message: 'x', ack: 'sometimes' });
    assert.deepEqual([badAck.status, badAck.body.errorCode], [400, 400004]);
    assert.equal((await send({ deviceId: 'c2dTarget' })).status, 400, 'a body without a message');
    for (let depth = 2; depth <= 50; depth++) assert.equal((await send({ deviceId: 'c2dTarget', message: `m${depth}` })).body.depth, depth);
    const full = await send({ deviceId: 'c2dTarget', message: 'one too many' });
    assert.deepEqual([full.status, full.body.errorCode], [403, 403004]);
    assert.equal(t.hub.c2d.depth('c2dTarget'), 50);
    assert.ok(log.some((line) => /refused a cloud-to-device message to c2dTarget/.test(line.message)));
  }));

test('cloud-to-device from the page counts against the tier: past the S1 rate it answers 429 ThrottlingException and queues nothing', async () => {
  const throttle = new Throttle('s1', () => 0); // a stopped clock: nothing refills
  const t = await startTestHub({ throttle });
  try {
    const { cookie } = await signIn(t);
    await registerIdentity(t, 'c2dThrottled');
    while (throttle.allow('c2d')); // what a minute of sends at the S1 rate would leave
    const reply = await call(t, '/ui/api/c2d', { method: 'POST', cookie, body: { deviceId: 'c2dThrottled', message: 'x' } });
    assert.equal(reply.status, 429);
    assert.equal(JSON.parse(reply.text).errorCode, 429001);
    assert.equal(t.hub.c2d.depth('c2dThrottled'), 0);
  } finally {
    await t.dispose();
  }
});
