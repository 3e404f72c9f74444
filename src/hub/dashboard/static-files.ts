import { readFile } from 'node:fs/promises';

/** The page's files, as the build leaves them: src/ui compiled by tsc, with its HTML and CSS copied beside. */
const UI_DIR = new URL('../../ui/', import.meta.url);

const CONTENT_TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

/** A file name under the page's directory: lower-case names, no dots but the extension's, so nothing outside is reachable. */
const FILE_NAME = /^(?:[a-z0-9-]+\/)*[a-z0-9-]+\.(js|css|html)$/;

export interface StaticFile {
  body: Buffer;
  contentType: string;
}

/** One of the page's files by its name (e.g. 'views/twin.js'), or undefined when there is no such file. */
export async function uiFile(name: string): Promise<StaticFile | undefined> {
  const match = FILE_NAME.exec(name);
  if (!match) return undefined;
  try {
    return { body: await readFile(new URL(name, UI_DIR)), contentType: CONTENT_TYPES[match[1]] };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
