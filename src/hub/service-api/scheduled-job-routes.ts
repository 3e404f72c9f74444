import { hubErrors } from '../errors.js';
import { JOB_STATUSES, JOB_TYPES } from '../jobs/job-input.js';
import type { ScheduledJobs } from '../jobs/scheduled-jobs.js';
import type { Route } from './router.js';

/**
 * Scheduled jobs over HTTPS (/jobs/v2), as azure-iothub's JobClient calls them. Import and export
 * jobs (/jobs/create, /jobs/{id}) are a different API with routes of their own.
 */
export function scheduledJobRoutes(jobs: ScheduledJobs): Route[] {
  return [
    // Before /jobs/v2/:jobId, which would take 'query' for a job id.
    {
      method: 'GET',
      path: '/jobs/v2/query',
      operation: 'Jobs_QueryScheduledJobs',
      right: ['RegistryRead', 'ServiceConnect'],
      handle: ({ query, headers }) => {
        const jobType = oneOf(query.get('jobType'), JOB_TYPES, 'jobType');
        const jobStatus = oneOf(query.get('jobStatus'), JOB_STATUSES, 'jobStatus');
        const maxItems = headers['x-ms-max-item-count'];
        const continuation = headers['x-ms-continuation'];
        const page = jobs.query(
          { jobType, jobStatus },
          maxItems === undefined ? undefined : Number(maxItems),
          typeof continuation === 'string' ? continuation : undefined,
        );
        return {
          status: 200,
          body: page.items,
          headers: { 'x-ms-item-type': 'JobResponse', ...(page.continuationToken ? { 'x-ms-continuation': page.continuationToken } : {}) },
        };
      },
    },
    {
      method: 'PUT',
      path: '/jobs/v2/:jobId',
      operation: 'Jobs_CreateScheduledJob',
      right: 'ServiceConnect',
      handle: ({ params, body }) => ({ status: 200, body: jobs.schedule(params.jobId, body) }),
    },
    {
      method: 'GET',
      path: '/jobs/v2/:jobId',
      operation: 'Jobs_GetScheduledJob',
      right: ['RegistryRead', 'ServiceConnect'],
      handle: ({ params }) => ({ status: 200, body: jobs.get(params.jobId) }),
    },
    {
      method: 'POST',
      path: '/jobs/v2/:jobId/cancel',
      operation: 'Jobs_CancelScheduledJob',
      right: 'ServiceConnect',
      handle: ({ params }) => ({ status: 200, body: jobs.cancel(params.jobId) }),
    },
  ];
}

function oneOf(value: string | null, allowed: readonly string[], name: string): string | undefined {
  if (value === null || value === '') return undefined;
  if (!allowed.includes(value)) throw hubErrors.argumentInvalid(`${name} must be one of ${allowed.join(', ')}`);
  return value;
}
