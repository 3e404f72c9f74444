import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createHash, X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium package; CI installs it with apt-get (no browser download from elsewhere). */
export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
}

// Without the background-networking flags Chromium dials out at start, and here such connections are refused.
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Headless Chromium with a fresh profile that trusts the hub's TLS key and nothing else: the SHA-256
 * of the server certificate's public key, which the test fetches over a connection verified with the
 * hub's CA (Chromium's --ignore-certificate-errors-spki-list; unlike ignoreHTTPSErrors, a
 * certificate with any other key is still refused).
 */
export async function launchBrowser(port: number, ca: string | Buffer, viewport = { width: 1440, height: 900 }): Promise<TestBrowser> {
  const pin = await serverKeyPin(port, ca);
  const profile = mkdtempSync(join(tmpdir(), 'iothub-tut-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, `--ignore-certificate-errors-spki-list=${pin}`],
    viewport,
    locale: 'en-GB',
    timeout: 120_000,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

async function serverKeyPin(port: number, ca: string | Buffer): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  await once(socket, 'secureConnect');
  const raw = socket.getPeerCertificate().raw;
  socket.destroy();
  const spki = new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}
