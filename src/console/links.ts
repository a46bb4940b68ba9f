/**
 * Where the web console lives, and the one place that says where a run opens in it: Bull Board's
 * job links and the front door point here, so the console's routes can move without hunting for
 * URLs. Paths only (no host), so they work behind any proxy that keeps the server's paths.
 */
export const CONSOLE_PATH = '/console';

/** A run's page in the console. */
export function consoleRunPath(runId: string): string {
  return `${CONSOLE_PATH}/runs/${encodeURIComponent(runId)}`;
}
