import type { ImportExportJobs } from '../import-export/import-export-jobs.js';
import type { Route } from './router.js';

/**
 * Import and export jobs over HTTPS, as azure-iothub's Registry (exportDevicesToBlob,
 * importDevicesFromBlob, getJob, listJobs, cancelJob) calls them. Scheduled jobs live under /jobs/v2.
 */
export function importExportRoutes(jobs: ImportExportJobs): Route[] {
  return [
    {
      method: 'POST',
      path: '/jobs/create',
      operation: 'Jobs_CreateImportExportJob',
      right: 'RegistryWrite',
      handle: ({ body }) => ({ status: 200, body: jobs.create(body) }),
    },
    {
      method: 'GET',
      path: '/jobs',
      operation: 'Jobs_GetImportExportJobs',
      right: 'RegistryRead',
      handle: () => ({ status: 200, body: jobs.list() }),
    },
    {
      method: 'GET',
      path: '/jobs/:jobId',
      operation: 'Jobs_GetImportExportJob',
      right: 'RegistryRead',
      handle: ({ params }) => ({ status: 200, body: jobs.get(params.jobId) }),
    },
    {
      method: 'DELETE',
      path: '/jobs/:jobId',
      operation: 'Jobs_CancelImportExportJob',
      right: 'RegistryWrite',
      handle: ({ params }) => ({ status: 200, body: jobs.cancel(params.jobId) }),
    },
  ];
}
