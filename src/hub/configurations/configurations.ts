import { isDeepStrictEqual } from 'node:util';
import { hubErrors, HubError } from '../errors.js';
import { compileQuery } from '../query/compile.js';
import { countRows, type QuerySource, type TwinDocument } from '../query/index.js';
import type { ConfigurationStore } from '../store/configuration-store.js';
import type { Twins } from '../twins/twin-service.js';
import type { TwinKey } from '../twins/twin-state.js';
import { isJsonObject, type JsonObject } from '../twins/json.js';
import type { HubLog } from '../log.js';
import {
  desiredPatchOf,
  etagOfConfiguration,
  parseConfigurationInput,
  sameContent,
  validateConfigurationId,
  type ConfigurationRecord,
  type TwinConfigurations,
} from './configuration.js';
import { parseIfMatch } from '../if-match.js';

/** IoT Hub's limit on a standard-tier hub (a free one has 10). */
export const MAX_CONFIGURATIONS = 100;

/** Which twins a configuration targets: a collection and a predicate over its documents. */
interface Target {
  kind: 'devices' | 'modules';
  /** The query that lists the targeted twins, as IoT Hub shows it in systemMetrics. */
  query: string;
  matches: (doc: TwinDocument) => boolean;
}

interface Compiled {
  record: ConfigurationRecord;
  target?: Target;
}

const MODULES_CONDITION = /^\s*from\s+devices\.modules\s+where\s/i;

/**
 * Automatic device configurations: each targets the twins its condition selects, and the one with the
 * highest priority (then the latest created) among those that target a twin is applied to it, once:
 * its content is merged into the twin's desired properties. The twin lists every configuration that
 * targets it under `configurations` ('Targeted' or 'Applied'). The hub reconciles a twin whenever it
 * changes or is created, and every twin whenever a configuration changes; IoT Hub does the same on a
 * five-minute cycle. A twin that stops matching keeps the desired properties it was given, as on IoT Hub.
 */
export class Configurations {
  private compiled = new Map<string, Compiled>();
  /** Twins whose content is being applied: their own change events must not reconcile them again meanwhile. */
  private readonly applying = new Set<string>();

  constructor(
    private readonly store: ConfigurationStore,
    private readonly twins: Twins,
    private readonly source: QuerySource,
    private readonly documentOf: (key: TwinKey) => TwinDocument,
    private readonly log: HubLog,
    private readonly now: () => Date = () => new Date(),
  ) {
    for (const record of store.all()) this.compiled.set(record.id, { record, target: compileTarget(record) });
  }

  get(id: string): ConfigurationRecord {
    return this.store.get(id) ?? notFound(id);
  }

  /** Every configuration, oldest first, at most `top`. */
  list(top = MAX_CONFIGURATIONS): ConfigurationRecord[] {
    return this.store
      .all()
      .sort((a, b) => a.createdTimeUtc.localeCompare(b.createdTimeUtc) || a.id.localeCompare(b.id))
      .slice(0, top);
  }

  /**
   * PUT semantics as the registry's: without If-Match it creates (a duplicate is a 409); with If-Match
   * it updates ('*' or the current etag; a stale one is a 412), and the content may not change.
   */
  createOrUpdate(id: string, body: unknown, ifMatch: string | undefined): ConfigurationRecord {
    validateConfigurationId(id);
    const input = parseConfigurationInput(body, id);
    const existing = this.store.get(id);
    const etag = parseIfMatch(ifMatch);
    if (existing && etag === undefined) throw hubErrors.configurationAlreadyExists(id);
    if (existing && etag !== '*' && etag !== etagOfConfiguration(existing)) {
      throw hubErrors.preconditionFailed(`The etag '${etag}' does not match the current etag of configuration '${id}'`);
    }
    if (existing && !sameContent(existing.content, input.content)) throw hubErrors.cannotModifyImmutableConfigurationContent(id);
    if (!existing && this.store.count() >= MAX_CONFIGURATIONS) throw hubErrors.configurationCountLimitExceeded(MAX_CONFIGURATIONS);
    const now = this.now().toISOString();
    const record: ConfigurationRecord = {
      id,
      ...input,
      createdTimeUtc: existing?.createdTimeUtc ?? now,
      lastUpdatedTimeUtc: now,
      etagCounter: (existing?.etagCounter ?? 0) + 1,
    };
    const target = compileTarget(record);
    for (const [name, query] of Object.entries(record.metricQueries)) checkMetricQuery(name, query);
    this.store.put(record);
    this.compiled.set(id, { record, target });
    this.reconcileAll();
    return record;
  }

  delete(id: string, ifMatch: string | undefined): void {
    const existing = this.get(id);
    const etag = parseIfMatch(ifMatch);
    if (etag !== undefined && etag !== '*' && etag !== etagOfConfiguration(existing)) {
      throw hubErrors.preconditionFailed(`The etag '${etag}' does not match the current etag of configuration '${id}'`);
    }
    this.store.delete(id);
    this.compiled.delete(id);
    // A twin it was applied to may now get the next configuration in line.
    this.reconcileAll();
  }

  /** The configuration as GET shows it, with its system and custom metrics computed now. */
  toJson(record: ConfigurationRecord): Record<string, unknown> {
    const target = this.compiled.get(record.id)?.target ?? compileTarget(record);
    const collection = target?.kind === 'modules' ? 'devices.modules' : 'devices';
    const columns = target?.kind === 'modules' ? 'deviceId, moduleId' : 'deviceId';
    const metrics = Object.fromEntries(Object.entries(record.metricQueries).map(([name, query]) => [name, countRows(query, this.source)]));
    return {
      id: record.id,
      schemaVersion: record.schemaVersion,
      labels: record.labels,
      content: { deviceContent: {}, moduleContent: {}, modulesContent: {}, ...record.content },
      targetCondition: record.targetCondition,
      createdTimeUtc: record.createdTimeUtc,
      lastUpdatedTimeUtc: record.lastUpdatedTimeUtc,
      priority: record.priority,
      systemMetrics: {
        results: { targetedCount: target ? this.countTargeted(target) : 0, appliedCount: this.store.countWithStatus(record.id, 'Applied') },
        queries: {
          targetedCount: target?.query ?? '',
          appliedCount: `select ${columns} from ${collection} where configurations.[[${record.id}]].status = 'Applied'`,
        },
      },
      metrics: { results: metrics, queries: record.metricQueries },
      etag: etagOfConfiguration(record),
    };
  }

  /** POST /configurations/testQueries: the errors of a target condition and of custom metric queries, without saving anything. */
  testQueries(body: unknown): { targetConditionError: string; customMetricQueryErrors: Record<string, string> } {
    if (!isJsonObject(body)) throw hubErrors.argumentInvalid('The body must be {"targetCondition": "...", "customMetricQueries": {...}}');
    const errorOf = (check: () => void): string => {
      try {
        check();
        return '';
      } catch (err) {
        if (err instanceof HubError) return err.message;
        throw err;
      }
    };
    const condition = body.targetCondition;
    const queries = isJsonObject(body.customMetricQueries) ? body.customMetricQueries : {};
    return {
      targetConditionError: typeof condition === 'string' ? errorOf(() => compileCondition(condition)) : '',
      customMetricQueryErrors: Object.fromEntries(
        Object.entries(queries)
          .map(([name, query]) => [name, errorOf(() => checkMetricQuery(name, typeof query === 'string' ? query : ''))])
          .filter(([, error]) => error !== ''),
      ),
    };
  }

  /**
   * POST /devices/{id}/applyConfigurationContent: an IoT Edge deployment's `modulesContent` applied
   * at once to that device's module twins (`{"<module>": {"properties.desired": {...}}}`).
   */
  applyOnEdgeDevice(deviceId: string, isEdge: boolean, content: unknown): void {
    const modulesContent = isJsonObject(content) ? content.modulesContent : undefined;
    if (!isJsonObject(modulesContent) || Object.keys(modulesContent).length === 0) {
      throw hubErrors.invalidConfigurationContent('The content must hold modulesContent: {"<module>": {"properties.desired": {...}}}');
    }
    if (!isEdge) throw hubErrors.argumentInvalid(`Device ${deviceId} is not an IoT Edge device (capabilities.iotEdge is false)`);
    const patches = modulePatches(modulesContent);
    for (const moduleId of patches.keys()) this.twins.get({ deviceId, moduleId }); // 404 ModuleNotFound before any write
    for (const [moduleId, desired] of patches) this.twins.patchFromService({ deviceId, moduleId }, { properties: { desired } });
  }

  /** A twin was created or changed: the configurations that target it now, and the one applied. */
  reconcile(key: TwinKey, document?: TwinDocument): void {
    const twinKey = JSON.stringify([key.deviceId, key.moduleId ?? '']);
    if (this.applying.has(twinKey)) return;
    // Without configurations a twin write costs nothing more (reported properties can come fast).
    if (this.compiled.size === 0 && !this.store.statusesOf(key)) return;
    const doc = document ?? this.documentOf(key);
    const kind = key.moduleId ? 'modules' : 'devices';
    const targeting = [...this.compiled.values()].filter(({ target }) => target?.kind === kind && target.matches(doc)).map((c) => c.record);
    const before = this.store.statusesOf(key) ?? {};
    const after: TwinConfigurations = {};
    for (const { id } of targeting) after[id] = { status: 'Targeted' };
    const winner = targeting.filter(hasContent).sort(byPrecedence)[0];
    if (winner && (before[winner.id]?.status === 'Applied' || this.apply(twinKey, key, winner))) after[winner.id] = { status: 'Applied' };
    if (!isDeepStrictEqual(before, after)) this.store.setStatuses(key, after);
  }

  private reconcileAll(): void {
    for (const doc of this.source.devices()) this.reconcile({ deviceId: doc.deviceId as string }, doc);
    for (const doc of this.source.modules()) this.reconcile({ deviceId: doc.deviceId as string, moduleId: doc.moduleId as string }, doc);
  }

  /** Writes a configuration's content into a twin; false (and a log line) when the twin refuses it. */
  private apply(twinKey: string, key: TwinKey, record: ConfigurationRecord): boolean {
    this.applying.add(twinKey);
    try {
      const { deviceContent, moduleContent, modulesContent } = record.content;
      if (modulesContent) {
        for (const [moduleId, desired] of modulePatches(modulesContent)) {
          if (this.twins.find({ deviceId: key.deviceId, moduleId }))
            this.twins.patchFromService({ deviceId: key.deviceId, moduleId }, { properties: { desired } });
        }
      } else {
        this.twins.patchFromService(key, { properties: { desired: desiredPatchOf((deviceContent ?? moduleContent)!) } });
      }
      return true;
    } catch (err) {
      if (!(err instanceof HubError)) throw err;
      this.log.info(
        'hub',
        `configuration ${record.id} could not be applied to ${key.moduleId ? `${key.deviceId}/${key.moduleId}` : key.deviceId}: ${err.message}`,
      );
      return false;
    } finally {
      this.applying.delete(twinKey);
    }
  }

  private countTargeted(target: Target): number {
    let n = 0;
    for (const doc of target.kind === 'devices' ? this.source.devices() : this.source.modules()) if (target.matches(doc)) n++;
    return n;
  }
}

function notFound(id: string): never {
  throw hubErrors.configurationNotFound(id);
}

function hasContent(record: ConfigurationRecord): boolean {
  return Object.keys(record.content).length > 0;
}

/** Highest priority first; on a tie the latest created, as IoT Hub decides. */
function byPrecedence(a: ConfigurationRecord, b: ConfigurationRecord): number {
  return b.priority - a.priority || b.createdTimeUtc.localeCompare(a.createdTimeUtc) || a.id.localeCompare(b.id);
}

/** The query of a target condition: a WHERE clause on devices, `FROM devices.modules WHERE ...`, or `*` for every device. */
function conditionQuery(condition: string): { kind: Target['kind']; text: string } {
  if (condition.trim() === '*') return { kind: 'devices', text: 'select deviceId from devices' };
  if (MODULES_CONDITION.test(condition)) return { kind: 'modules', text: `select deviceId, moduleId ${condition.trim()}` };
  return { kind: 'devices', text: `select deviceId from devices where ${condition.trim()}` };
}

function compileCondition(condition: string): Target | undefined {
  if (!condition.trim()) return undefined;
  const { kind, text } = conditionQuery(condition);
  try {
    return { kind, query: text, matches: compileQuery(text).filter };
  } catch (err) {
    if (err instanceof HubError) throw hubErrors.invalidConfigurationTargetCondition(`The target condition is invalid: ${err.message}`);
    throw err;
  }
}

/** The target of a stored or new configuration; its content must suit the twins it targets. */
function compileTarget(record: ConfigurationRecord): Target | undefined {
  const target = compileCondition(record.targetCondition);
  const forModules = record.content.moduleContent !== undefined;
  if (target && hasContent(record) && forModules !== (target.kind === 'modules')) {
    throw hubErrors.invalidConfigurationTargetCondition(
      forModules
        ? 'A configuration with moduleContent needs a target condition that starts with FROM devices.modules WHERE'
        : 'A configuration with deviceContent or modulesContent targets devices: its condition cannot start with FROM devices.modules',
    );
  }
  return target;
}

function checkMetricQuery(name: string, query: string): void {
  try {
    compileQuery(query);
  } catch (err) {
    if (err instanceof HubError)
      throw hubErrors.invalidConfigurationCustomMetricsQuery(`The metric '${name}' has an invalid query: ${err.message}`);
    throw err;
  }
}

/** modulesContent as desired-property patches by module; `$edgeAgent` and `$edgeHub` are modules like any other here. */
function modulePatches(modulesContent: JsonObject): Map<string, JsonObject> {
  const patches = new Map<string, JsonObject>();
  for (const [moduleId, module] of Object.entries(modulesContent)) {
    const desired = isJsonObject(module) ? module['properties.desired'] : undefined;
    if (!isJsonObject(desired))
      throw hubErrors.invalidConfigurationContent(`modulesContent.${moduleId} must be {"properties.desired": {...}}`);
    patches.set(moduleId, desired);
  }
  return patches;
}
