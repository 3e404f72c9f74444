import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homeFor, jsonLines, runCli, runCliInProcess } from '../helpers/cli.js';
import { startTestHub, type TestHub } from '../helpers/hub.js';

/** One line on stderr, no stack trace. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.doesNotMatch(stderr, /\n\s+at /);
  return lines[0]!;
}

// The hub runs in this process, announced to the CLI by a profile as `hub start` would.
describe('X.509 devices from the CLI: create-device --x509, then the device commands with --cert and --key', () => {
  let t: TestHub;
  let env: { IOTHUB_TUT_HOME: string };
  let dir: string;
  before(async () => {
    t = await startTestHub({ inMemory: true });
    env = { IOTHUB_TUT_HOME: homeFor(t) };
    dir = mkdtempSync(join(tmpdir(), 'iothub-tut-x509-'));
  });
  after(async () => {
    await t.dispose();
    for (const path of [dir, env.IOTHUB_TUT_HOME]) rmSync(path, { recursive: true, force: true });
  });

  test('create-device --x509 writes a certificate (CN = the device id) and a 0600 key, and registers its SHA-256 thumbprint', async () => {
    const r = await runCli(['create-device', '-d', 'x509-cli', '--x509', '--json'], env, 60_000, dir);
    assert.equal(r.code, 0, r.stderr);
    const [created] = jsonLines(r.stdout);
    assert.deepEqual(created, {
      deviceId: 'x509-cli',
      thumbprint: created.thumbprint,
      certFile: 'x509-cli-cert.pem',
      keyFile: 'x509-cli-key.pem',
    });
    const cert = new X509Certificate(readFileSync(join(dir, 'x509-cli-cert.pem')));
    assert.equal(cert.subject, 'CN=x509-cli');
    assert.equal(cert.fingerprint256.replace(/:/g, ''), created.thumbprint);
    assert.equal(statSync(join(dir, 'x509-cli-key.pem')).mode & 0o777, 0o600, 'the private key is readable by its owner only');

    const shown = await runCli(['twin', 'show', '-d', 'x509-cli', '--json'], env);
    assert.equal(shown.code, 0, shown.stderr);
    const twin = jsonLines(shown.stdout)[0];
    assert.equal(twin.authenticationType, 'selfSigned');
    assert.deepEqual(twin.x509Thumbprint, { primaryThumbprint: created.thumbprint, secondaryThumbprint: created.thumbprint });

    const text = await runCli(['create-device', '-d', 'x509-text', '--x509', '--out-dir', 'certs'], env, 60_000, dir);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /send-telemetry -d x509-text --cert certs\/x509-text-cert\.pem --key certs\/x509-text-key\.pem/);
    assert.ok(existsSync(join(dir, 'certs', 'x509-text-key.pem')), '--out-dir is made when missing');
  });

  test('send-telemetry --cert --key connects with the certificate (MQTT, MQTT over WebSockets, HTTPS): the events say x509Certificate', async () => {
    const files = ['--cert', join(dir, 'x509-cli-cert.pem'), '--key', join(dir, 'x509-cli-key.pem')];
    const sent = await runCli(['send-telemetry', '-d', 'x509-cli', ...files, '--count', '2', '--interval', '0', '--json'], env);
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(jsonLines(sent.stdout).filter((l) => l.event === 'confirmed').length, 2);
    // The SDK's own x509=true connection string, as an app of one's own has it, with the files beside it.
    const x509String = 'HostName=localhost;DeviceId=x509-cli;x509=true';
    const fromString = await runCli(['send-telemetry', '-c', x509String, ...files, '--count', '1'], env);
    assert.equal(fromString.code, 0, fromString.stderr);
    const overWebSockets = await runCli(['send-telemetry', '-d', 'x509-cli', ...files, '--count', '1', '--transport', 'mqtt-ws'], env);
    assert.equal(overWebSockets.code, 0, overWebSockets.stderr);
    const overHttps = await runCli(['send-telemetry', '-d', 'x509-cli', ...files, '--count', '1', '--transport', 'http'], env);
    assert.equal(overHttps.code, 0, overHttps.stderr);

    const monitor = await runCli(
      ['monitor-events', '-d', 'x509-cli', '--from-start', '--count', '5', '--properties', '--json', '--timeout', '60'],
      env,
    );
    assert.equal(monitor.code, 0, monitor.stderr);
    const events = jsonLines(monitor.stdout).filter((l) => l.event === 'message');
    assert.equal(events.length, 5, monitor.stdout);
    for (const event of events) assert.match(event.systemProperties['iothub-connection-auth-method'], /"type":"x509Certificate"/);
  });

  test("another device's certificate: one line, exit 4, naming the certificate", async () => {
    const r = await runCli(
      [
        'send-telemetry',
        '-d',
        'x509-text',
        '--cert',
        join(dir, 'x509-cli-cert.pem'),
        '--key',
        join(dir, 'x509-cli-key.pem'),
        '--count',
        '1',
      ],
      env,
    );
    assert.equal(r.code, 4, r.stderr);
    assert.match(oneLine(r.stderr), /connecting device 'x509-text': not authorized: the hub refused the certificate/);
  });

  test('bad uses: one line and exit 2 (or 7 for an existing device), and no file written or overwritten', async () => {
    const certFile = join(dir, 'x509-cli-cert.pem');
    const before = readFileSync(certFile, 'utf8');
    const again = await runCli(['create-device', '-d', 'x509-cli', '--x509'], env, 60_000, dir);
    assert.equal(again.code, 2, again.stderr);
    assert.match(oneLine(again.stderr), /x509-cli-cert\.pem already exists/);
    assert.equal(readFileSync(certFile, 'utf8'), before, 'an existing certificate is never overwritten');

    const exists = await runCli(['create-device', '-d', 'x509-cli', '--x509', '--out-dir', 'elsewhere'], env, 60_000, dir);
    assert.equal(exists.code, 7, exists.stderr);
    assert.match(oneLine(exists.stderr), /Device 'x509-cli' already exists/);
    assert.ok(!existsSync(join(dir, 'elsewhere')), 'nothing is written for a device that was not created');

    const outDirAlone = await runCli(['create-device', '-d', 'plain', '--out-dir', 'x'], env, 60_000, dir);
    assert.equal(outDirAlone.code, 2, outDirAlone.stderr);
    assert.match(oneLine(outDirAlone.stderr), /--out-dir goes with --x509/);

    const notPem = join(dir, 'not-a-cert.pem');
    writeFileSync(notPem, 'hello');
    const refused: Array<[string[], RegExp]> = [
      [['--cert', certFile], /--cert needs --key too/],
      [['--cert', notPem, '--key', join(dir, 'x509-cli-key.pem')], /holds no PEM certificate/],
      [['--cert', certFile, '--key', join(dir, 'missing.pem')], /--key .*missing\.pem cannot be read: ENOENT/],
      [['-c', 'HostName=localhost;DeviceId=x509-cli;x509=true'], /x509=true\): pass its certificate and key with --cert and --key/],
    ];
    for (const [i, [args, message]] of refused.entries()) {
      // Refused before any connection: the first as a subprocess, the others in this process.
      const r = await (i === 0 ? runCli : runCliInProcess)(['send-telemetry', '-d', 'x509-cli', ...args, '--count', '1'], env);
      assert.equal(r.code, 2, r.stderr);
      assert.match(oneLine(r.stderr), message);
    }
  });
});
