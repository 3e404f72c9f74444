import type { IncomingHttpHeaders } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import * as tls from 'node:tls';
import { loadStorageBlob } from '../import-export/blob-container.js';
import type { StorageAccount } from './storage-account.js';

/** Every call to the storage account is bounded: one that does not answer fails the call, never hangs it. */
const STORAGE_TIMEOUT_MS = 10_000;
/** The Blob service version the hub's requests speak. */
const STORAGE_VERSION = '2021-08-06';

export interface BlobResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * The hub's own calls to a storage account's blob endpoint (file upload's container and blob reads,
 * message routing's blob writes), signed with SAS tokens of the account's key. Over https it trusts
 * what Node trusts and the hub's own CA, which signs the certificate the hub writes for Azurite.
 */
export class BlobAccount {
  private readonly agentOptions: RequestOptions;

  constructor(
    readonly storage: StorageAccount,
    hubCa: string,
    private readonly now: () => number = Date.now,
  ) {
    const trusted = typeof tls.getCACertificates === 'function' ? tls.getCACertificates('default') : [...tls.rootCertificates];
    this.agentOptions = { ca: [...trusted, hubCa], timeout: STORAGE_TIMEOUT_MS };
  }

  /** The URL of a blob (its name's segments encoded), or of the container when `blobName` is absent. */
  url(container: string, blobName?: string): string {
    return [this.storage.blobEndpoint, container, ...(blobName ? blobName.split('/') : [])]
      .map((part, i) => (i === 0 ? part : encodeURIComponent(part)))
      .join('/');
  }

  /**
   * A service SAS for one blob (`protocol` https only, as IoT Hub gives devices, or either, for the
   * hub's own calls to an http endpoint).
   */
  async blobSas(container: string, blobName: string, permissions: string, expiresMs: number, httpsOnly = true): Promise<string> {
    const { generateBlobSASQueryParameters, BlobSASPermissions, SASProtocol, StorageSharedKeyCredential } = await loadStorageBlob();
    const { accountName, accountKey } = this.storage;
    return generateBlobSASQueryParameters(
      {
        containerName: container,
        blobName,
        permissions: BlobSASPermissions.parse(permissions),
        expiresOn: new Date(expiresMs),
        protocol: httpsOnly ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
      },
      new StorageSharedKeyCredential(accountName, accountKey),
    ).toString();
  }

  /** Creates the container unless the account has it already (IoT Hub leaves that to its user; a fresh Azurite has none). */
  async ensureContainer(container: string): Promise<void> {
    const {
      generateAccountSASQueryParameters,
      AccountSASPermissions,
      AccountSASResourceTypes,
      AccountSASServices,
      StorageSharedKeyCredential,
    } = await loadStorageBlob();
    const { accountName, accountKey } = this.storage;
    const sas = generateAccountSASQueryParameters(
      {
        services: AccountSASServices.parse('b').toString(),
        resourceTypes: AccountSASResourceTypes.parse('c').toString(),
        permissions: AccountSASPermissions.parse('c'),
        expiresOn: new Date(this.now() + 5 * 60 * 1000),
      },
      new StorageSharedKeyCredential(accountName, accountKey),
    ).toString();
    const { status } = await this.request('PUT', `${this.url(container)}?restype=container&${sas}`);
    // 201 Created, or 409 ContainerAlreadyExists.
    if (status !== 201 && status !== 409) throw new Error(`the storage account answered ${status} to creating the container ${container}`);
  }

  request(method: string, url: string, headers: Record<string, string | number> = {}, body?: Buffer): Promise<BlobResponse> {
    const send = url.startsWith('http:') ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const all = { 'x-ms-version': STORAGE_VERSION, 'content-length': body?.length ?? 0, ...headers };
      const req = send(url, { ...this.agentOptions, method, headers: all }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${STORAGE_TIMEOUT_MS / 1000} s`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
