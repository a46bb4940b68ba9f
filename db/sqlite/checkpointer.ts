/**
 * A worker thread that checkpoints the SQLite WAL into the database file, so the event loop of
 * the process never waits for it. A checkpoint copies every page the WAL holds and fsyncs the
 * file; left to SQLite's auto-checkpoint it runs inside whichever commit crosses the threshold,
 * and that commit (with every request waiting on it) stalls for the fsync. PASSIVE never blocks
 * writers or readers: it copies what it can and leaves the rest for the next pass.
 */
import { Database } from 'bun:sqlite';

declare const self: Worker;

/** How often to look; a pass with nothing to copy costs next to nothing. */
const INTERVAL_MS = 100;

let db: Database | undefined;
let timer: ReturnType<typeof setInterval> | undefined;

self.onmessage = (event: MessageEvent<{ open: string } | { close: true }>) => {
  if ('open' in event.data) {
    db = new Database(event.data.open);
    db.exec('PRAGMA busy_timeout = 5000');
    const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
    timer = setInterval(() => {
      try {
        checkpoint.get();
      } catch {
        // Busy or closing: the next pass (or SQLite's own fallback checkpoint) catches up.
      }
    }, INTERVAL_MS);
    return;
  }
  clearInterval(timer);
  db?.close();
  self.postMessage('closed');
};
