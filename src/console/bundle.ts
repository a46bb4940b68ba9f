import { join } from 'node:path';

/** The console's browser code and its stylesheet, built from `ui/` and held in memory. */
export interface ConsoleBundle {
  js: string;
  css: string;
  /** The same, gzipped once here rather than on every request. */
  gzipped: { js: Uint8Array; css: Uint8Array };
  /** A short hash of both, in the asset URLs, so a browser never runs a stale build. */
  version: string;
}

const UI = join(import.meta.dir, 'ui');

/**
 * Builds the console with Bun's bundler, in this process: no build step before `bun run start`,
 * nothing written to disk, no CDN (Preact and the typed client are bundled in). Minified, it is
 * a few tens of kilobytes, a third of that gzipped.
 */
export async function buildConsole(): Promise<ConsoleBundle> {
  const result = await Bun.build({
    entrypoints: [join(UI, 'main.tsx')],
    target: 'browser',
    format: 'esm',
    minify: true,
    sourcemap: 'none',
  });
  const output = result.outputs[0];
  if (!result.success || !output) {
    throw new AggregateError(result.logs, 'the console did not build');
  }
  const js = await output.text();
  const css = await Bun.file(join(UI, 'console.css')).text();
  const version = Bun.hash(js + css)
    .toString(36)
    .slice(0, 10);
  return { js, css, gzipped: { js: Bun.gzipSync(js), css: Bun.gzipSync(css) }, version };
}
