import type { ContainerClient } from '@azure/storage-blob';
import { hubErrors } from '../errors.js';

// @azure/storage-blob is loaded by the first import or export job (or file upload), not as the hub starts: loading
// it costs half a CPU-second, more than the rest of a hub's start together.
let storageBlob: typeof import('@azure/storage-blob') | undefined;
export async function loadStorageBlob(): Promise<typeof import('@azure/storage-blob')> {
  return (storageBlob ??= await import('@azure/storage-blob'));
}

/** Every storage call is bounded: a storage account that does not answer fails the job, never hangs it. */
const TRY_TIMEOUT_MS = 30_000;

/**
 * A blob container the caller gave as a SAS URI (`https://<account>.blob.core.windows.net/<container>?sv=...`,
 * or Azurite's `http://127.0.0.1:10000/devstoreaccount1/<container>?sv=...`), through the official
 * @azure/storage-blob client, so the same code serves a real storage account and the emulator.
 */
export class BlobContainer {
  private client?: ContainerClient;

  constructor(
    readonly uri: string,
    private readonly signal: AbortSignal,
  ) {}

  private async container(): Promise<ContainerClient> {
    const { ContainerClient } = await loadStorageBlob();
    return (this.client ??= new ContainerClient(this.uri, undefined, { retryOptions: { maxTries: 2, tryTimeoutInMs: TRY_TIMEOUT_MS } }));
  }

  /** The container's address without its SAS token: what logs and failure reasons may show. */
  get name(): string {
    return withoutQuery(this.uri);
  }

  async write(blobName: string, text: string): Promise<void> {
    await (await this.container()).getBlockBlobClient(blobName).upload(text, Buffer.byteLength(text), {
      abortSignal: this.signal,
      blobHTTPHeaders: { blobContentType: 'text/plain; charset=utf-8' },
    });
  }

  async read(blobName: string): Promise<string> {
    const buffer = await (
      await this.container()
    )
      .getBlobClient(blobName)
      .downloadToBuffer(undefined, undefined, { abortSignal: this.signal });
    return buffer.toString('utf8');
  }
}

/** A container URI must be an absolute http(s) URL; checked when the job is created. */
export function checkContainerUri(value: unknown, name: string): string {
  if (typeof value !== 'string' || !value) throw hubErrors.argumentInvalid(`${name} is required: a blob container URI with a SAS token`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw hubErrors.argumentInvalid(`${name} is not a valid URI`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw hubErrors.argumentInvalid(`${name} must be an http or https URI, not ${url.protocol}`);
  return value;
}

export function withoutQuery(uri: string): string {
  const at = uri.indexOf('?');
  return at < 0 ? uri : uri.slice(0, at);
}

/** A storage failure as one line for a job's failureReason (never the SAS token). */
export function describeStorageError(err: unknown, container: BlobContainer, blobName: string): string {
  const where = `${container.name}/${blobName}`;
  if (storageBlob && err instanceof storageBlob.RestError) {
    return `The storage account refused ${where}: ${err.statusCode ?? 'no answer'}${err.code ? ` ${err.code}` : ''}`;
  }
  return `The storage account could not be reached at ${where}: ${(err as Error)?.message ?? err}`;
}
