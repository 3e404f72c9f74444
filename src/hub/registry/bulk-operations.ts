import { HubError, hubErrors } from '../errors.js';
import { parseIdentityInput, type IdentityInput } from './identity-input.js';
import type { IdentityKey, Registry } from './registry.js';

/** IoT Hub's limit on one bulk registry call ("A maximum of 100 devices can be specified per invocation"). */
export const MAX_BULK_IDENTITIES = 100;

const IMPORT_MODES = ['create', 'update', 'updateIfMatchETag', 'delete', 'deleteIfMatchETag'] as const;
type ImportMode = (typeof IMPORT_MODES)[number];

interface BulkOperation {
  key: IdentityKey;
  mode: ImportMode;
  etag?: string;
  /** The item itself, typed as an identity body when the operation writes one. */
  body: Record<string, unknown>;
}

/** IoT Hub's DeviceRegistryOperationError. */
export interface BulkOperationError {
  deviceId: string;
  moduleId?: string;
  operation: ImportMode;
  errorCode: string;
  errorStatus: string;
}

/** IoT Hub's BulkRegistryOperationResult. */
export interface BulkOperationResult {
  isSuccessful: boolean;
  errors: BulkOperationError[];
  warnings: never[];
}

/**
 * POST /devices: creates, updates and deletes up to 100 identities (ExportImportDevice items: `id`,
 * optional `moduleId`, `importMode`, `eTag`, and the identity's fields) in one transaction. A
 * malformed request (not an array, empty, over 100, an item without id or with an unknown mode, an
 * identity named twice) is refused whole with a 400; an item that fails (it exists, it does not, a
 * stale eTag, a bad field) is reported in `errors` and the others are applied, as IoT Hub does.
 * Twin sections in the items are not applied (the import job's business).
 */
export function applyBulk(registry: Registry, body: unknown): BulkOperationResult {
  const operations = parseBulk(body);
  const errors = registry.batch(() =>
    operations.flatMap((operation) => {
      try {
        apply(registry, operation);
        return [];
      } catch (err) {
        if (!(err instanceof HubError)) throw err;
        const { key, mode } = operation;
        return [
          {
            deviceId: key.deviceId,
            ...(key.moduleId ? { moduleId: key.moduleId } : {}),
            operation: mode,
            errorCode: err.code,
            errorStatus: err.message,
          },
        ];
      }
    }),
  );
  return { isSuccessful: errors.length === 0, errors, warnings: [] };
}

function apply(registry: Registry, { key, mode, etag, body }: BulkOperation): void {
  const ifMatch = mode.endsWith('IfMatchETag') ? requiredEtag(etag, key) : '*';
  if (mode === 'delete' || mode === 'deleteIfMatchETag') return registry.delete(key, ifMatch);
  const input: IdentityInput = parseIdentityInput(body, key);
  if (mode === 'create') {
    registry.createOrUpdate(key, input, undefined);
    return;
  }
  registry.get(key.deviceId, key.moduleId); // an update names an identity that exists
  registry.createOrUpdate(key, input, ifMatch);
}

function requiredEtag(etag: string | undefined, key: IdentityKey): string {
  if (etag === undefined) throw hubErrors.argumentInvalid(`The item for '${key.deviceId}' needs an eTag with an IfMatchETag import mode`);
  return `"${etag}"`;
}

function parseBulk(body: unknown): BulkOperation[] {
  if (!Array.isArray(body)) throw hubErrors.argumentInvalid('The request body must be a JSON array of device registry operations');
  if (body.length === 0 || body.length > MAX_BULK_IDENTITIES) {
    throw hubErrors.argumentInvalid(`A bulk registry operation takes 1 to ${MAX_BULK_IDENTITIES} identities, not ${body.length}`);
  }
  const seen = new Set<string>();
  return body.map((item: unknown, i): BulkOperation => {
    if (item === null || typeof item !== 'object' || Array.isArray(item))
      throw hubErrors.argumentInvalid(`Item ${i} must be a JSON object`);
    const fields = item as Record<string, unknown>;
    const { id, moduleId, importMode } = fields;
    // The REST spec names it eTag; azure-iothub sends the Device's own etag (IoT Hub reads JSON names case-insensitively).
    const eTag = fields.eTag ?? fields.etag;
    if (typeof id !== 'string' || id === '') throw hubErrors.argumentInvalid(`Item ${i} has no id`);
    if (moduleId !== undefined && moduleId !== null && typeof moduleId !== 'string')
      throw hubErrors.argumentInvalid(`Item ${i}'s moduleId must be a string`);
    const mode = IMPORT_MODES.find((m) => typeof importMode === 'string' && m.toLowerCase() === importMode.toLowerCase());
    if (!mode) throw hubErrors.argumentInvalid(`Item ${i}'s importMode must be one of ${IMPORT_MODES.join(', ')}`);
    if (eTag !== undefined && eTag !== null && typeof eTag !== 'string')
      throw hubErrors.argumentInvalid(`Item ${i}'s eTag must be a string`);
    const key: IdentityKey = moduleId ? { deviceId: id, moduleId } : { deviceId: id };
    const name = `${id}/${moduleId ?? ''}`;
    if (seen.has(name))
      throw hubErrors.argumentInvalid(
        `'${moduleId ? `${id}/${moduleId}` : id}' is named more than once; an identity can be specified only once in the list`,
      );
    seen.add(name);
    return { key, mode, etag: eTag ?? undefined, body: fields };
  });
}
