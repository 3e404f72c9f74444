/**
 * The storage account behind file upload, from its connection string (portal: Storage account >
 * Access keys), as IoT Hub's file upload settings take it: the account's name and key sign the SAS
 * tokens devices upload with, and its blob endpoint is where they upload.
 */
export interface StorageAccount {
  accountName: string;
  accountKey: string;
  /** The blob endpoint, without a trailing slash: https://{account}.blob.core.windows.net, or Azurite's https://127.0.0.1:10000/devstoreaccount1. */
  blobEndpoint: string;
  /**
   * What devices are told as the storage `hostName`: the blob endpoint without its scheme. The SDKs
   * upload to `https://{hostName}/{containerName}/{blobName}{sasToken}`, so an endpoint with a path
   * (Azurite's account segment) works as the account's host would.
   */
  hostName: string;
}

/** A storage connection string the hub cannot use; the message says why, in one line. */
export class StorageAccountError extends Error {}

/** Azurite's well-known development account, which `UseDevelopmentStorage=true` names. */
const DEVELOPMENT_STORAGE =
  'AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;' +
  'BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1';

/**
 * Parses `DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;EndpointSuffix=core.windows.net`
 * or one with a `BlobEndpoint=` (Azurite's, or a custom domain). For devices (file upload) the
 * endpoint must be https: every device SDK uploads over https, whatever the endpoint says. For the
 * hub's own writes (message routing) http will do, and `UseDevelopmentStorage=true` names Azurite's
 * plain-http account.
 */
export function parseStorageAccount(connectionString: string, { forDevices = true } = {}): StorageAccount {
  if (!forDevices && /^\s*UseDevelopmentStorage\s*=\s*true\s*;?\s*$/i.test(connectionString)) connectionString = DEVELOPMENT_STORAGE;
  const fields = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    if (!part.trim()) continue;
    const at = part.indexOf('=');
    if (at <= 0) throw new StorageAccountError(`'${part.split('=')[0]}' is not a Key=Value pair of a storage connection string`);
    fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  if (fields.get('usedevelopmentstorage') === 'true') {
    throw new StorageAccountError(
      "UseDevelopmentStorage=true is Azurite's plain-http endpoint, and device SDKs upload over https: run Azurite with --cert and --key, " +
        'and give its https connection string (README, "File upload")',
    );
  }
  const accountName = fields.get('accountname');
  const accountKey = fields.get('accountkey');
  if (!accountName || !accountKey) throw new StorageAccountError('a storage connection string needs AccountName and AccountKey');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(accountKey)) throw new StorageAccountError('AccountKey is not base64');
  const endpoint =
    fields.get('blobendpoint') ??
    `${fields.get('defaultendpointsprotocol') ?? 'https'}://${accountName}.blob.${fields.get('endpointsuffix') ?? 'core.windows.net'}`;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new StorageAccountError(`the blob endpoint '${endpoint}' is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && !forDevices)) {
    throw new StorageAccountError(
      `the blob endpoint ${url.origin} is not https, and device SDKs upload over https (for Azurite: --cert and --key, README "File upload")`,
    );
  }
  if (url.search || url.hash) throw new StorageAccountError(`the blob endpoint '${endpoint}' must not have a query or a fragment`);
  const blobEndpoint = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  return { accountName, accountKey, blobEndpoint, hostName: blobEndpoint.slice(url.protocol.length + 2) };
}

/** Azure's rule for a container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or a digit. */
export function checkContainerName(name: string): string {
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/.test(name)) {
    throw new StorageAccountError(
      `'${name}' is not a container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or a digit`,
    );
  }
  return name;
}
