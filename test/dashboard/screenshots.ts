// `npm run screenshots`: the README's pictures of the dashboard, taken by the real browser while the
// tutorials run against a `hub start` subprocess, as a workshop would see them. Writes docs/dashboard-*.png.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { CliProcess, runCli, startHubProcess } from '../helpers/cli.js';
import { browserMissing, launchBrowser } from '../helpers/browser.js';

const DOCS = fileURLToPath(new URL('../../../docs/', import.meta.url));

const missing = browserMissing();
if (missing) {
  console.error(`screenshots: ${missing}`);
  process.exit(1);
}

const shot = async (page: Page, name: string) => {
  await page.screenshot({ path: `${DOCS}dashboard-${name}.png` });
  console.log(`docs/dashboard-${name}.png`);
};

const hub = await startHubProcess();
const started = hub.hub.lines.find((line: any) => line.event === 'started') as { port: number; caFile: string; dashboardUrl: string };
const devices: CliProcess[] = [];
const browser = await launchBrowser(started.port, readFileSync(started.caFile));
try {
  for (const args of [['create-module'], ['create-device', '-d', 'myDeviceId'], ['create-device', '-d', 'thermostat-7']]) {
    const result = await runCli(args, hub.env);
    if (result.code !== 0) throw new Error(`${args.join(' ')}: ${result.stderr}`);
  }
  const page = await browser.context.newPage();

  await page.goto(`https://localhost:${started.port}/ui/`);
  await shot(page, 'signed-out');

  await page.goto(started.dashboardUrl);
  const twinPatches = new CliProcess(['receive-twin-patch', '--json'], hub.env);
  const reboots = new CliProcess(['reboot-device', '--reboot-seconds', '2', '--json'], hub.env);
  devices.push(twinPatches, reboots);
  await Promise.all([twinPatches, reboots].map((p) => p.waitFor((line) => line.event === 'ready')));
  await page.getByRole('row', { name: /myDeviceId.*Connected/ }).waitFor();
  await shot(page, 'devices');

  await page.goto(`${new URL(started.dashboardUrl).origin}/ui/#/twin?device=myFirstDevice&module=myFirstModule`);
  await page.getByLabel('Patch of properties.desired (JSON)').fill('{"telemetryInterval": 122}');
  await page.getByRole('button', { name: 'Apply patch' }).click();
  await twinPatches.waitFor((line) => line.event === 'patch');
  await page
    .getByRole('row', { name: /telemetryInterval/ })
    .first()
    .waitFor();
  await shot(page, 'twin');

  await page.getByRole('link', { name: 'Direct method' }).click();
  await page.getByLabel('Device or module').selectOption('myDeviceId');
  await page.getByRole('button', { name: 'Invoke method' }).click();
  await page.getByText('Status 200').waitFor();
  await shot(page, 'method');

  await page.getByRole('link', { name: 'Telemetry' }).click();
  const telemetry = new CliProcess(['send-telemetry', '--count', '24', '--interval', '0.5', '--json'], hub.env);
  devices.push(telemetry);
  await telemetry.waitFor((line) => line.event === 'summary', 60_000);
  await page.getByText('24 messages shown').waitFor();
  await shot(page, 'telemetry');

  await page.getByRole('link', { name: 'Cloud-to-device' }).click();
  await page.getByRole('combobox', { name: /^Device/ }).selectOption('thermostat-7');
  await page.getByRole('combobox', { name: /^Feedback \(ack\)/ }).selectOption('full');
  await page.getByRole('button', { name: 'Send message' }).click();
  await page.getByText(/its queue holds 1\.$/).waitFor();
  await shot(page, 'cloud-to-device');

  await page.getByRole('link', { name: 'Hub' }).click();
  await page.getByText('Messages per second').waitFor();
  await page.getByText('1 queued').waitFor(); // thermostat-7's message, with the next live update
  await shot(page, 'hub');

  // The same stream at 1920 × 1080 in projector mode, as the back of a room sees it.
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.getByRole('link', { name: 'Telemetry' }).click();
  await page.getByRole('button', { name: 'Projector mode' }).click();
  await shot(page, 'projector');
} finally {
  for (const device of devices) await device.stop();
  await browser.close();
  await hub.stop();
}
