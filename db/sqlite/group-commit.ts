import type { Db } from './database';

/**
 * One unit of writes: synchronous statements (prepared on the same `Db`) run inside the
 * transaction the committer holds. It must not await, and it may run twice (see below), so it
 * only reads and writes the database.
 */
export type WriteUnit<T> = () => T;

type Pending = {
  unit: WriteUnit<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
};

/**
 * Group commit: every write transaction asked for during one turn of the event loop (ingress,
 * a run's start and finish, marking outbox rows delivered) is committed as one SQLite
 * transaction. A commit costs far more than the rows in it (the WAL frames of every page it
 * touched), so under load this is the difference between a commit per message and one per
 * batch. Each unit is still all-or-nothing and resolves only once its rows are committed: if
 * any unit throws, the group is rolled back and each unit is run again in a transaction of its
 * own, so one failing write cannot fail or half-apply the others.
 */
function createGroupCommitter(db: Db) {
  let pending: Pending[] = [];
  const flush = () => {
    const group = pending;
    pending = [];
    let results: unknown[];
    try {
      results = db.transaction(() => group.map((p) => p.unit()), {
        behavior: 'immediate',
      });
    } catch (error) {
      // The write lock was not to be had (another process held it past busy_timeout): nothing
      // ran, and each unit on its own would wait as long again. Fail them all at once.
      if (/^SQLITE_BUSY/.test(String((error as { code?: unknown })?.code ?? ''))) {
        for (const p of group) p.reject(error);
        return;
      }
      for (const p of group) {
        try {
          p.resolve(db.transaction(() => p.unit(), { behavior: 'immediate' }));
        } catch (error) {
          p.reject(error);
        }
      }
      return;
    }
    for (const [i, p] of group.entries()) p.resolve(results[i]);
  };
  return <T>(unit: WriteUnit<T>) =>
    new Promise<T>((resolve, reject) => {
      if (pending.length === 0) setImmediate(flush);
      pending.push({ unit, resolve: resolve as Pending['resolve'], reject });
    });
}

const committers = new WeakMap<Db, ReturnType<typeof createGroupCommitter>>();

/** Runs `unit` in this turn's group transaction; resolves with its result after the commit. */
export function commitWrite<T>(db: Db, unit: WriteUnit<T>): Promise<T> {
  let committer = committers.get(db);
  if (!committer) {
    committer = createGroupCommitter(db);
    committers.set(db, committer);
  }
  return committer(unit);
}
