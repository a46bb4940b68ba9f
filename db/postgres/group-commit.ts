import postgres from 'postgres';

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
 * committer holds. Statements sent before the unit's first `await` go out in the same pipeline
 * as the other units' and the `begin`. It must not commit, roll back or catch a statement's
 * error, and it may run twice (see below), so it only reads and writes the database.
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
 * previous groups are out (ingress, a run's start) are sent as one transaction on one
 * connection: `begin`, every unit's statements pipelined, `commit`. A transaction's round trips
 * and its commit cost more than its rows, so under load this is one commit, and one round trip
 * per step, for a whole batch. Each unit is still all-or-nothing and resolves only once its
 * rows are committed: if any unit fails (an error of its own, a deadlock, a lost connection),
 * the group is rolled back and each unit is run again in a transaction of its own, so one
 * failing write cannot fail or half-apply the others.
 */
function createGroupCommitter(client: postgres.Sql) {
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

async function commitGroup(client: postgres.Sql, group: Pending[]) {
  if (group.length > 1) {
    group.sort((a, b) => order(a.unit).localeCompare(order(b.unit)));
    let results: unknown[] | undefined;
    try {
      results = await inTransaction(
        client,
        group.map((p) => p.unit),
      );
    } catch {
      // Retried one by one below: the error is the unit's own, and it gets it again.
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
 * Whether a statement's error means its connection is gone: the driver's own errors (the
 * socket closed or failed) and the server's connection and shutdown states (class 08, 57P0x).
 */
const lostConnection = (error: unknown) =>
  !(error instanceof postgres.PostgresError) || /^(08|57P0)/.test(error.code);

/**
 * A reserved connection as a `Conn`, and whether it was lost: the driver writes a statement
 * sent on a lost connection to a socket that is gone (an uncaught TypeError), and takes a lost
 * connection released back as an open one, so neither may happen.
 */
function holdConnection(reserved: postgres.ReservedSql) {
  const held = {
    lost: false,
    query(text: string, params: unknown[] = []): Promise<RawRow[]> {
      if (held.lost) {
        return Promise.reject(
          Object.assign(new Error('the connection was lost'), { code: 'CONNECTION_CLOSED' }),
        );
      }
      const statement = reserved.unsafe(text, params as never[]);
      statement.execute();
      return statement.then(
        (rows) => rows as unknown as RawRow[],
        (error: unknown) => {
          if (lostConnection(error)) held.lost = true;
          throw error;
        },
      );
    },
  };
  return held;
}

/** Runs `units` in one transaction on one connection; resolves with their results once committed. */
async function inTransaction(client: postgres.Sql, units: WriteUnit<unknown>[]) {
  const reserved = await client.reserve();
  const conn = holdConnection(reserved);
  try {
    const begun = conn.query('begin');
    const running = units.map((unit) => unit.run(conn));
    const settled = await Promise.allSettled([begun, ...running]);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) {
      if (!conn.lost) await conn.query('rollback').catch(() => {});
      throw failed.reason;
    }
    const committed = (await conn.query('commit')) as unknown as { command: string };
    // A transaction that failed answers COMMIT with ROLLBACK; none of its units got an error
    // only if a unit swallowed one, which units must not do. Never report it as committed.
    if (committed.command !== 'COMMIT') throw new Error(`commit answered ${committed.command}`);
    return settled.slice(1).map((s) => (s as PromiseFulfilledResult<unknown>).value);
  } finally {
    // A lost connection is the driver's to reconnect: released, it would be handed out as open.
    if (!conn.lost) reserved.release();
  }
}

const committers = new WeakMap<postgres.Sql, ReturnType<typeof createGroupCommitter>>();

/** Runs `unit` in a group transaction; resolves with its result after the commit. */
export function commitWrite<T>(client: postgres.Sql, unit: WriteUnit<T>): Promise<T> {
  let committer = committers.get(client);
  if (!committer) {
    committer = createGroupCommitter(client);
    committers.set(client, committer);
  }
  return committer(unit);
}

/**
 * Runs `run` in a transaction of its own on one connection, its statements pipelined behind
 * the `begin`; for a write that locks more than one thread's rows or decides from what it read
 * whether to write (so it is no part of a group).
 */
export async function commitAlone<T>(
  client: postgres.Sql,
  run: (conn: Conn) => Promise<T>,
): Promise<T> {
  const [result] = await inTransaction(client, [{ run }]);
  return result as T;
}
