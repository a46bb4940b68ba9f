import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { type Config, loadConfig } from '../../src/config';

const EXAMPLE = join(import.meta.dir, '..', '..', '.env.example');

/** `.env.example`'s variables, as Bun would load them from a `.env` copy (comments skipped). */
async function exampleEnv(): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await Bun.file(EXAMPLE).text()).split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1] as string] = match[2] as string;
  }
  return env;
}

/** Every variable `loadConfig` reads, found by handing it an environment that records reads. */
function variablesRead(): string[] {
  const read = new Set<string>();
  const env = new Proxy({} as Record<string, string | undefined>, {
    get(_, name) {
      if (typeof name === 'string') read.add(name);
      return undefined;
    },
  });
  loadConfig(env);
  return [...read].sort();
}

/** A config without what differs between two loads: the generated admin password. */
const comparable = (config: Config) => ({ ...config, admin: { ...config.admin, password: '' } });

describe('.env.example', () => {
  test('lists exactly the variables the parser reads', async () => {
    const listed = Object.keys(await exampleEnv()).sort();
    expect(listed).toEqual(variablesRead());
  });

  test('its values are the defaults: loading it changes nothing', async () => {
    expect(comparable(loadConfig(await exampleEnv()))).toEqual(comparable(loadConfig({})));
  });
});
