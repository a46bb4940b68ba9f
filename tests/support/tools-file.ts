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

/**
 * A TOOLS_FILE of HTTP tools on a test tool server (harness/tool-servers.ts): `tools` maps each
 * tool's name to its path there (`/echo`, `/fail`…); each takes `{q: string}`. The tools named in
 * `approval` need the client's approval.
 */
export function writeHttpToolsFile(
  serverUrl: string,
  tools: Record<string, string>,
  opts: { approval?: string[] } = {},
) {
  const path = join(mkdtempSync(join(tmpdir(), 'http-tools-')), 'tools.json');
  const http = Object.entries(tools).map(([name, route]) => ({
    name,
    description: `the ${name} tool`,
    parameters: { type: 'object', properties: { q: { type: 'string' } } },
    url: `${serverUrl}${route}`,
    approval: opts.approval?.includes(name) ?? false,
  }));
  writeFileSync(path, JSON.stringify({ http }));
  return path;
}
