import { hubErrors } from '../errors.js';
import { parseInvocation } from '../methods/direct-methods.js';
import { compileQuery, type CompiledQuery } from '../query/compile.js';
import { parseQuery } from '../query/parser.js';
import { serviceSections } from '../twins/request-body.js';
import { isJsonObject } from '../twins/json.js';
import type { JobRecord, JobStatus, JobType } from '../store/job-store.js';

/** IoT Hub's rule: at most 64 characters, US-ASCII letters, digits and dashes ("Schedule jobs on multiple devices"). */
const JOB_ID = /^[A-Za-z0-9-]{1,64}$/;

/** The hub's own bound on a job's run (IoT Hub documents none): a job can never outlive its history's 30 days. */
const MAX_EXECUTION_SECONDS = 30 * 24 * 3600;

export const JOB_TYPES: readonly JobType[] = ['scheduleDeviceMethod', 'scheduleUpdateTwin'];
export const JOB_STATUSES: readonly JobStatus[] = ['queued', 'scheduled', 'running', 'completed', 'failed', 'cancelled'];

export function checkJobId(jobId: string): string {
  if (!JOB_ID.test(jobId)) {
    throw hubErrors.argumentInvalid(`The job id '${jobId.slice(0, 80)}' is invalid: up to 64 US-ASCII letters, digits and dashes (-)`);
  }
  return jobId;
}

/**
 * The device twins a job's queryCondition selects, compiled as the WHERE clause of a devices query.
 * The parentheses keep the condition a condition: anything after it (GROUP BY, another FROM) is a
 * syntax error, as it would be on IoT Hub.
 */
export function compileCondition(condition: string): CompiledQuery['filter'] {
  const text = `SELECT * FROM devices WHERE (${condition})`;
  const ast = parseQuery(text);
  if (ast.groupBy.length > 0) throw hubErrors.invalidQuery('queryCondition must be a condition only, like "tags.building = \'43\'"');
  return compileQuery(text).filter;
}

/**
 * PUT /jobs/v2/{jobId}, validated as IoT Hub does (400 for anything out of its rules), as the job
 * the hub stores: queued, created now, starting at startTime (now when absent).
 */
export function parseJob(jobId: string, body: unknown, now: Date): JobRecord {
  checkJobId(jobId);
  if (!isJsonObject(body)) throw hubErrors.argumentInvalid('The request body must be a JSON object');
  if (body.jobId !== undefined && body.jobId !== null && String(body.jobId) !== jobId) {
    throw hubErrors.argumentInvalid(`The body's jobId '${String(body.jobId).slice(0, 80)}' differs from the job id in the path '${jobId}'`);
  }
  const type = body.type;
  if (typeof type !== 'string' || !(JOB_TYPES as readonly string[]).includes(type)) {
    throw hubErrors.argumentInvalid(`type must be one of ${JOB_TYPES.join(', ')}`);
  }
  const queryCondition = body.queryCondition;
  if (typeof queryCondition !== 'string' || !queryCondition.trim())
    throw hubErrors.argumentInvalid('queryCondition must be a query condition, like "deviceId IN [\'myDeviceId\']"');
  compileCondition(queryCondition);

  const job: JobRecord = {
    jobId,
    type: type as JobType,
    queryCondition,
    createdTime: now.toISOString(),
    startTime: startTime(body.startTime, now),
    maxExecutionTimeInSeconds: maxExecution(body.maxExecutionTimeInSeconds),
    status: 'queued',
  };
  if (type === 'scheduleDeviceMethod') {
    if (!isJsonObject(body.cloudToDeviceMethod))
      throw hubErrors.argumentInvalid('cloudToDeviceMethod must be an object with methodName, payload and responseTimeoutInSeconds');
    job.cloudToDeviceMethod = { ...parseInvocation(body.cloudToDeviceMethod) };
  } else {
    if (!isJsonObject(body.updateTwin))
      throw hubErrors.argumentInvalid('updateTwin must be a twin patch, like {"properties": {"desired": {...}}, "etag": "*"}');
    const { tags, desired } = serviceSections(body.updateTwin);
    if (!tags && !desired) throw hubErrors.argumentInvalid('updateTwin must write tags or properties.desired');
    job.updateTwin = body.updateTwin;
  }
  return job;
}

function startTime(value: unknown, now: Date): string {
  if (value === undefined || value === null) return now.toISOString();
  const time = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(time)) throw hubErrors.argumentInvalid('startTime must be an ISO 8601 date and time, like 2026-01-01T12:00:00Z');
  return new Date(time).toISOString();
}

function maxExecution(value: unknown): number {
  if (value === undefined || value === null) return 3600;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_EXECUTION_SECONDS) {
    throw hubErrors.argumentInvalid(`maxExecutionTimeInSeconds must be a whole number of seconds from 1 to ${MAX_EXECUTION_SECONDS}`);
  }
  return value;
}
