import { lostConnection } from './database';

/** A row as the driver gives it (see db/postgres/raw-rows.ts). */
export type RawRow = Record<string, unknown>;

/**
 * A connection held for one transaction: what a write unit sends its statements on. `query`
 * sends the statement at once (the driver's own queries wait to be awaited), so statements
 * asked for one after another go out in one pipeline.
 */
export interface Conn {
  query(text: string, params?: unknown[]): Promise<RawRow[]>;
}

/**
 * One unit of writes on PostgreSQL: statements sent on `conn`, inside the transaction the
 * committer holds. Statements sent before the unit's first `await` go out in one pipeline with
 * the other units' first statements, and so on for each step. It must not commit, roll back or
 * catch a statement's error, and it may run twice (see below), so it only reads and writes the
 * database.
 */
export interface WriteUnit<T> {
  /**
   * The thread whose row the unit locks first, if it locks one: a group's units run in this
   * order (ties keep their order of arrival), so two groups that lock threads take their locks
   * in the same order and never deadlock on each other. Units that lock no thread come first.
   */
  threadId?: string;
  run: (conn: Conn) => Promise<T>;
}

type Pending = {
  unit: WriteUnit<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
};

/**
 * Groups in flight at once, each on a connection of its own. While they are out, the next
 * group gathers: the busier the store, the more units a commit carries.
 */
const MAX_GROUPS_IN_FLIGHT = 2;

/**
 * Group commit, as on SQLite (db/sqlite/group-commit.ts): the write units asked for while the
 * previous groups are out (ingress, a run's start and finish, a summary, marking outbox rows
 * delivered) are sent as one transaction on one connection: `begin`, every unit's statements
 * pipelined, `commit`. A transaction's round trips and its commit cost more than its rows, so
 * under load this is one commit, and one round trip a step, for a whole batch. Each unit is
 * still all-or-nothing and resolves only once its rows are committed: if any unit fails (an
 * error of its own, a deadlock), the group is rolled back and each unit is run again in a
 * transaction of its own, so one failing write cannot fail or half-apply the others; if the
 * database is not to be had, they all fail at once.
 */
function createGroupCommitter(client: Bun.SQL) {
  let pending: Pending[] = [];
  let inFlight = 0;
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    if (pending.length === 0 || inFlight >= MAX_GROUPS_IN_FLIGHT) return;
    const group = pending;
    pending = [];
    inFlight += 1;
    void commitGroup(client, group).finally(() => {
      inFlight -= 1;
      schedule();
    });
  };
  const schedule = () => {
    if (scheduled || pending.length === 0 || inFlight >= MAX_GROUPS_IN_FLIGHT) return;
    scheduled = true;
    setImmediate(flush);
  };
  return <T>(unit: WriteUnit<T>) =>
    new Promise<T>((resolve, reject) => {
      pending.push({ unit, resolve: resolve as Pending['resolve'], reject });
      schedule();
    });
}

async function commitGroup(client: Bun.SQL, group: Pending[]) {
  if (group.length > 1) {
    group.sort((a, b) => order(a.unit).localeCompare(order(b.unit)));
    let results: unknown[] | undefined;
    try {
      results = await inTransaction(
        client,
        group.map((p) => p.unit),
      );
    } catch (error) {
      // The database is not to be had (the connection was lost, or none could be made): each
      // unit on its own would only try to connect again, and every failed try lengthens the
      // driver's back-off before the next. Fail them all at once, as SQLite does when its
      // write lock is not to be had. Any other error is retried one by one below: the error is
      // the unit's own, and it gets it again.
      if (lostConnection(error)) {
        for (const p of group) p.reject(error);
        return;
      }
    }
    if (results) {
      for (const [i, p] of group.entries()) p.resolve(results[i]);
      return;
    }
  }
  await Promise.all(
    group.map((p) => inTransaction(client, [p.unit]).then((r) => p.resolve(r[0]), p.reject)),
  );
}

const order = (unit: WriteUnit<unknown>) => unit.threadId ?? '';

/**
 * A transaction's connection as a `Conn`: each statement is sent at once (`execute`), so the
 * statements the units ask for before they await go out together, pipelined. A statement on a
 * connection that is lost fails with the driver's connection error, as do those behind it.
 */
const connOf = (tx: Bun.SQL): Conn => ({
  query: (text, params = []) => tx.unsafe(text, params).execute() as Promise<RawRow[]>,
});

/**
 * Runs `units` in one transaction; resolves with their results once committed. The driver's
 * `begin` holds the connection and rolls back when a unit fails.
 */
function inTransaction(client: Bun.SQL, units: WriteUnit<unknown>[]): Promise<unknown[]> {
  return client.begin(async (tx) => {
    const conn = connOf(tx);
    const settled = await Promise.allSettled(units.map((unit) => unit.run(conn)));
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value);
  }) as Promise<unknown[]>;
}

const committers = new WeakMap<Bun.SQL, ReturnType<typeof createGroupCommitter>>();

/** Runs `unit` in a group transaction; resolves with its result after the commit. */
export function commitWrite<T>(client: Bun.SQL, unit: WriteUnit<T>): Promise<T> {
  let committer = committers.get(client);
  if (!committer) {
    committer = createGroupCommitter(client);
    committers.set(client, committer);
  }
  return committer(unit);
}
