// The dashboard in a real browser (headless Chromium from Debian's package, driven by playwright-core),
// following the tutorials: `hub start` prints the URL; the device commands run as CLI subprocesses
// and the page shows them, live, and drives them.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { CliProcess, createIdentity, jsonLines, runCli, startHubProcess, type HubProcess } from '../helpers/cli.js';
import { browserMissing, launchBrowser, type TestBrowser } from '../helpers/browser.js';

const missing = browserMissing();
if (missing) console.log(`# dashboard browser tests skipped: ${missing}`);

/** Bounded waits on the page: the machine is shared and busy. */
const PAGE_WAIT_MS = 30_000;

describe('the dashboard in a real browser', { skip: missing }, () => {
  let hub: HubProcess;
  let started: { port: number; caFile: string; dashboardUrl: string };
  let browser: TestBrowser;
  let page: Page;
  const devices: CliProcess[] = [];
  const origin = () => `https://localhost:${started.port}`;

  /** A device command running beside the page, stopped at the end. */
  const device = (args: string[]) => {
    const process = new CliProcess([...args, '--json'], hub.env);
    devices.push(process);
    return process;
  };
  const cli = async (args: string[]) => {
    const result = await runCli([...args, '--json'], hub.env);
    assert.equal(result.code, 0, result.stderr);
    return jsonLines(result.stdout);
  };

  before(async () => {
    hub = await startHubProcess();
    started = hub.hub.lines.find((line: any) => line.event === 'started') as typeof started;
    browser = await launchBrowser(started.port, readFileSync(started.caFile));
    page = await browser.context.newPage();
    page.setDefaultTimeout(PAGE_WAIT_MS);
    await createIdentity(hub.home, 'myFirstDevice', 'myFirstModule');
  });

  after(async () => {
    for (const process of devices) await process.stop();
    await browser?.close();
    await hub?.stop();
  });

  test('without the URL hub start printed, or with a forged cookie, the page shows nothing of the hub', async () => {
    assert.match(started.dashboardUrl, new RegExp(`^https://localhost:${started.port}/ui/\\?token=[A-Za-z0-9_-]{43}$`));
    const stranger = await browser.context.newPage();
    try {
      assert.equal((await stranger.goto(`${origin()}/ui/`))?.status(), 401);
      await stranger.getByText('Open the URL that iothub-tut hub start printed').waitFor();
      assert.doesNotMatch(await stranger.content(), /myFirstDevice/);

      await browser.context.addCookies([{ name: `__Secure-iothub-tut-ui-${started.port}`, value: 'A'.repeat(43), url: `${origin()}/ui/` }]);
      assert.equal((await stranger.goto(`${origin()}/ui/`))?.status(), 401);
      await stranger.getByText('Open the URL that iothub-tut hub start printed').waitFor();
      assert.equal((await stranger.goto(`${origin()}/ui/api/devices`))?.status(), 401);
      assert.doesNotMatch(await stranger.content(), /myFirstDevice/);
    } finally {
      await stranger.close();
      await browser.context.clearCookies();
    }
  });

  test("the printed URL signs in once, into an HttpOnly, Secure, SameSite=Strict cookie; the device list shows the tutorial's identities", async () => {
    await page.goto(started.dashboardUrl);
    assert.equal(page.url(), `${origin()}/ui/`, 'the token is off the address bar');
    await page.getByRole('heading', { name: 'Devices and modules' }).waitFor();
    await page.getByRole('row', { name: /myFirstDevice\/myFirstModule/ }).waitFor();
    const [cookie] = await browser.context.cookies(`${origin()}/ui/`);
    assert.equal(cookie.name, `__Secure-iothub-tut-ui-${started.port}`);
    assert.deepEqual([cookie.httpOnly, cookie.secure, cookie.sameSite, cookie.path], [true, true, 'Strict', '/ui']);
    assert.equal(await page.evaluate(() => document.cookie), '', 'no script reads the session');

    const again = await browser.context.newPage();
    assert.equal((await again.goto(started.dashboardUrl))?.status(), 401, 'the link is spent');
    await again.close();
  });

  test('a device connects and appears as Connected, live (receive-twin-patch)', async () => {
    await page.goto(`${origin()}/ui/#/devices`);
    const row = page.getByRole('row', { name: /myFirstDevice\/myFirstModule/ });
    await row.getByText('Disconnected').waitFor();
    const receiver = device(['receive-twin-patch', '--count', '1', '--timeout', '120']);
    await receiver.waitFor((line) => line.event === 'ready');
    await row.getByText('Connected', { exact: true }).waitFor();
  });

  test('a desired patch from the page reaches receive-twin-patch; the twin shows it with its version and $metadata time', async () => {
    const receiver = devices.at(-1)!;
    await page.getByRole('link', { name: 'Twin of myFirstDevice/myFirstModule' }).click();
    await page.getByRole('heading', { name: 'Twin of myFirstDevice/myFirstModule' }).waitFor();
    await page.getByText('Sent with If-Match').waitFor();
    await page.getByLabel('Patch of properties.desired (JSON)').fill('{"telemetryInterval": 122}');
    await page.getByRole('button', { name: 'Apply patch' }).click();
    const patch = await receiver.waitFor((line) => line.event === 'patch');
    assert.deepEqual(patch.patch, { telemetryInterval: 122, $version: 2 });
    assert.equal(await receiver.exit(), 0);

    const row = page.getByRole('row', { name: /telemetryInterval/ }).first();
    await row.waitFor();
    const cells = await row.locator('th, td').allTextContents();
    assert.equal(cells[0], 'telemetryInterval');
    assert.equal(cells[1], '122');
    assert.match(cells[2], /^\d\d:\d\d:\d\d$/, 'the $metadata time');
    assert.equal(cells[3], '2', 'the desired version it came with');
    await page.getByRole('heading', { name: /Desired properties \$version 2/ }).waitFor();
  });

  test('a desired patch on a twin that changed meanwhile is refused with 412, said plainly', async () => {
    await page.getByLabel('Patch of properties.desired (JSON)').fill('{"telemetryInterval": 30}');
    await cli(['update-module-twin', '--desired', '{"telemetryInterval":60}']);
    await page.getByText(/The twin changed \(now version \d+\) since you began editing/).waitFor();
    await page.getByRole('button', { name: 'Apply patch' }).click();
    await page
      .getByRole('alert')
      .getByText(/Not applied: the twin changed since it was read at version \d+ \(412 PreconditionFailed\)/)
      .waitFor();
    await page.getByRole('heading', { name: /Desired properties \$version 3/ }).waitFor();
  });

  test('a method call from the page is answered by reboot-device', async () => {
    await createIdentity(hub.home, 'myDeviceId');
    const rebooter = device(['reboot-device', '--reboot-seconds', '1', '--count', '1']);
    await rebooter.waitFor((line) => line.event === 'ready');
    await page.getByRole('link', { name: 'Direct method' }).click();
    await page.getByLabel('Device or module').selectOption('myDeviceId');
    assert.equal(await page.getByLabel('Method name').inputValue(), 'rebootDevice');
    await page.getByRole('button', { name: 'Invoke method' }).click();
    await page.getByText('Status 200').waitFor();
    assert.match((await page.locator('.answer pre').textContent()) ?? '', /"Response": "Rebooting device"/);
    const request = await rebooter.waitFor((line) => line.event === 'request');
    assert.equal(request.methodName, 'rebootDevice');
    assert.equal(await rebooter.exit(), 0);
  });

  test('send-telemetry messages appear in the stream and on the chart; the stream pauses and filters', async () => {
    await page.getByRole('link', { name: 'Telemetry' }).click();
    await page.getByText('No messages yet').waitFor();
    const sent = await cli(['send-telemetry', '--count', '5', '--interval', '0.2']);
    const confirmed = sent.filter((line) => line.event === 'confirmed');
    assert.equal(confirmed.length, 5);

    await page.getByText('5 messages shown. Live.').waitFor();
    const bodies = await page.locator('ol.stream .message pre.body').allTextContents();
    assert.deepEqual(
      bodies.map((b) => JSON.parse(b).windSpeed),
      confirmed.map((c) => c.body.windSpeed).reverse(),
      'newest first',
    );
    await page.getByText('Property=PropMsg_5').waitFor();
    const series = page.locator('svg.chart g.series[data-series="myFirstDevice windSpeed"]');
    assert.equal(await series.locator('circle').count(), 5);
    const label = await page.locator('svg.chart').getAttribute('aria-label');
    assert.match(label ?? '', new RegExp(`myFirstDevice windSpeed: latest ${confirmed[4].body.windSpeed.toFixed(2)}`));
    await page.getByRole('group', { name: 'Fields on the chart' }).getByLabel('windSpeed').waitFor();

    await page.getByRole('button', { name: 'Pause' }).click();
    await cli(['send-telemetry', '--count', '2', '--interval', '0.1']);
    await page.getByText('Paused: 2 new messages waiting.').waitFor();
    assert.equal(await page.locator('ol.stream .message').count(), 5);
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByText('7 messages shown. Live.').waitFor();

    await page.getByLabel('Filter').fill('PropMsg_1');
    await page.getByText('2 messages shown. Live.').waitFor();
    await page.getByLabel('Filter').fill('');
  });

  test('devices are created, disabled and deleted from the page; a connection string is masked until asked', async () => {
    await page.getByRole('link', { name: 'Devices', exact: true }).click();
    await page.getByLabel('Device ID').fill('pageDevice');
    await page.getByRole('button', { name: 'Create' }).click();
    const row = page.getByRole('row', { name: /^pageDevice/ });
    await row.waitFor();

    await page.getByRole('button', { name: 'Connection string of pageDevice' }).click();
    const value = page.locator('.secret-value').first();
    assert.match((await value.textContent()) ?? '', /^HostName=…;DeviceId=pageDevice;SharedAccessKey=•+$/);
    await page.getByRole('button', { name: 'Show' }).click();
    const [existing] = await cli(['create-device', '-d', 'pageDevice', '--show-secrets']);
    await page.getByText(existing.connectionString).waitFor();
    await page.getByRole('button', { name: 'Hide' }).click();
    assert.doesNotMatch((await value.textContent()) ?? '', /SharedAccessKey=[^•]/);

    await page.getByRole('button', { name: 'Disable pageDevice' }).click();
    await row.getByText('disabled', { exact: true }).waitFor();
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Delete pageDevice' }).click();
    await row.waitFor({ state: 'detached' });
  });

  test('the hub view shows ports, uptime, counts, the message rate and the cloud-to-device queues', async () => {
    // By keyboard: Tab from the top of the page to the Hub link, Enter, and the focus moves into the view.
    await page.goto(`${origin()}/ui/#/devices`);
    await page.reload(); // a fresh load: the focus starts at the top
    await page.getByRole('heading', { name: 'Devices and modules' }).waitFor();
    const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim());
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'Skip to the view');
    for (let presses = 0; (await focused()) !== 'Hub'; presses++) {
      assert.ok(presses < 15, 'the Hub link is reachable with Tab');
      await page.keyboard.press('Tab');
    }
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Hub', exact: true }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');

    const card = (name: string) => page.locator('.card').filter({ has: page.getByText(name, { exact: true }) });
    await card('Address').getByText(`localhost:${started.port}`).waitFor();
    await card('Identities').getByText('2 devices').waitFor();
    await card('Connected').getByText('devices and modules over MQTT; 1 dashboard page open').waitFor();
    assert.match((await card('Messages per second').textContent()) ?? '', /7 since the hub started/);
    await card('Cloud-to-device').getByText('0 queued').waitFor();
    await page.getByText('No warnings or errors since the hub started.').waitFor();
  });

  test('the cloud-to-device view sends a message to a device and shows its queue until the device receives it', async () => {
    await page.getByRole('link', { name: 'Cloud-to-device' }).click();
    await page.getByRole('heading', { name: 'Cloud-to-device' }).waitFor();
    await page.getByText('Every queue is empty').waitFor();
    await page.getByRole('combobox', { name: /^Device/ }).selectOption('myFirstDevice');
    await page.getByRole('textbox', { name: /^Message/ }).fill('Hello from the dashboard');
    await page.getByRole('combobox', { name: /^Feedback \(ack\)/ }).selectOption('full');
    await page.getByRole('button', { name: 'Send message' }).click();
    await page.getByText(/^Queued message [0-9a-f-]{36} for myFirstDevice; its queue holds 1\.$/).waitFor();
    await page.getByRole('row', { name: 'myFirstDevice 1' }).waitFor();

    // The tutorial's SimulatedDevice, in its own terminal: it gets the message, and the queue empties, live.
    const receiver = device(['receive-c2d', '--count', '1', '--timeout', '120']);
    assert.equal(await receiver.exit(60_000), 0, receiver.stderr);
    const message = receiver.lines.find((l: any) => l.event === 'message') as any;
    assert.equal(message.data, 'Hello from the dashboard');
    assert.equal(message.properties['iothub-ack'], 'full');
    await page.getByText('Every queue is empty').waitFor();
  });

  test('signing out ends the session: its cookie, set again, opens nothing', async () => {
    const [cookie] = await browser.context.cookies(`${origin()}/ui/`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('Open the URL that iothub-tut hub start printed').waitFor();
    await browser.context.addCookies([cookie]);
    assert.equal((await page.goto(`${origin()}/ui/`))?.status(), 401);
    assert.equal((await page.goto(`${origin()}/ui/api/overview`))?.status(), 401);
  });
});
