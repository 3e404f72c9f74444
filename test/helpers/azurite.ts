import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { rmSync } from 'node:fs';
// Loaded by startAzurite: a test that needs only the connection string does not pay for the package.
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { tempDir } from './hub.js';

/** Azurite's one account and its well-known key (published with the emulator; not a secret). */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const START_TIMEOUT_MS = 60_000;

/** The connection string of Azurite's account over https on `port`, as `hub start --file-upload` takes it. */
export function azuriteHttpsConnectionString(port: number): string {
  return `DefaultEndpointsProtocol=https;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};BlobEndpoint=https://127.0.0.1:${port}/${ACCOUNT};`;
}

export interface Azurite {
  service: BlobServiceClient;
  /** The account's connection string, on the endpoint this Azurite listens on. */
  connectionString: string;
  /** A new container and its SAS URI with the given permissions (default read, write, list, create). */
  container(name: string, permissions?: string): Promise<{ client: ContainerClient; sasUri: string }>;
  stop(): Promise<void>;
}

/** Azurite's blob service over https: its certificate and key, and the port to listen on. */
export interface AzuriteTls {
  cert: string;
  key: string;
  port: number;
}

/** Azurite's blob service as a real server: its own process, an ephemeral port (or `tls`'s), a scratch location. */
export async function startAzurite(tls?: AzuriteTls): Promise<Azurite> {
  const location = tempDir('iothub-tut-azurite-');
  const main = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
  const child = spawn(
    process.execPath,
    // No telemetry: Azurite would otherwise try to send it to Azure Monitor, and leave its buffer in the temporary directory.
    [
      main,
      ...['--blobHost', '127.0.0.1', '--blobPort', String(tls?.port ?? 0), '--location', location],
      // --loose: azure-iot-device's uploadToBlob (its own @azure/storage-blob 12.8) sends a header strict mode refuses.
      ...(tls ? ['--cert', tls.cert, '--key', tls.key, '--loose'] : []),
      ...['--silent', '--skipApiVersionCheck', '--disableTelemetry'],
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let url: string;
  try {
    url = await listeningUrl(child);
  } catch (err) {
    child.kill();
    rmSync(location, { recursive: true, force: true });
    throw err;
  }
  const { BlobServiceClient, ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential } =
    await import('@azure/storage-blob');
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);
  const service = new BlobServiceClient(`${url}/${ACCOUNT}`, credential);
  return {
    service,
    connectionString: `AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};BlobEndpoint=${url}/${ACCOUNT};`,
    async container(name, permissions = 'rwlc') {
      const client = service.getContainerClient(name);
      await client.createIfNotExists();
      const sas = generateBlobSASQueryParameters(
        { containerName: name, permissions: ContainerSASPermissions.parse(permissions), expiresOn: new Date(Date.now() + 3600_000) },
        credential,
      ).toString();
      return { client, sasUri: `${client.url}?${sas}` };
    },
    async stop() {
      // Its data is scratch: no need for its graceful shutdown, which waits out idle keep-alive sockets (~10 s).
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      rmSync(location, { recursive: true, force: true });
    },
  };
}

function listeningUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`Azurite did not start within ${START_TIMEOUT_MS} ms: ${output}`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk;
      const m = /listens on (https?:\/\/[\d.]+:\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Azurite exited (${code}) before it listened: ${output}`));
    });
  });
}
