import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A TOOLS_FILE with one HTTP server tool, `weather` (its URL answers nothing: the tests that use
 * it never call it), needing approval when `approval` is set.
 */
export function writeToolsFile(opts: { approval?: boolean } = {}) {
  const path = join(mkdtempSync(join(tmpdir(), 'client-tools-')), 'tools.json');
  writeFileSync(
    path,
    JSON.stringify({
      http: [
        {
          name: 'weather',
          description: 'The weather in a city',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
          url: 'http://127.0.0.1:9/weather',
          approval: opts.approval ?? false,
        },
      ],
    }),
  );
  return path;
}
