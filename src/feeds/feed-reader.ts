import { type Fields, toFields } from '../events/stream-fields';
import type { Logger } from '../logger';
import { createRedisClient, type RedisTarget } from '../redis/client';

export interface Entry {
  id: string;
  fields: Fields;
}

interface Subscriber {
  key: string;
  lastId: string;
  live: boolean;
  buffered: Entry[];
  onEntry: (entry: Entry) => void;
}

const BLOCK_MS = 250;
const READ_COUNT = 500;
const PAGE = 500;
/** `lastMatching`'s first page backwards; each next one is four times longer, up to PAGE. */
const FIRST_PAGE = 8;

/** A stream id in the form Redis writes it: `<ms>-<seq>`, no leading zeros, safe integers. */
const STREAM_ID = /^(0|[1-9]\d{0,15})-(0|[1-9]\d{0,15})$/;

/**
 * Whether a client's text (a `Last-Event-ID`) is a stream id, checked before it goes anywhere
 * near Redis, which refuses ids like `garbage`, `$` or `-1-1` with an error. Both parts must be
 * safe integers, so `compareIds` orders them exactly.
 */
export function isStreamId(text: string): boolean {
  const match = STREAM_ID.exec(text);
  return (
    match !== null &&
    Number.isSafeInteger(Number(match[1])) &&
    Number.isSafeInteger(Number(match[2]))
  );
}

/**
 * Stream ids compare as (milliseconds, sequence). Called for every subscriber of every entry,
 * so it allocates nothing: Redis writes both parts without leading zeros, so a longer part is
 * the larger number and parts of one length order as text. Anything else (no `-`, a leading
 * zero) is compared as numbers.
 */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const ad = a.indexOf('-');
  const bd = b.indexOf('-');
  if (ad < 1 || bd < 1 || !canonical(a, ad) || !canonical(b, bd)) return compareAsNumbers(a, b);
  if (ad !== bd) return ad - bd;
  // Parts of the same lengths: the texts order as the numbers (the common case, and native).
  if (a.length === b.length) return a < b ? -1 : 1;
  for (let i = 0; i < ad; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Neither part has a leading zero (`0` itself is fine). */
const canonical = (id: string, dash: number) =>
  (id.charCodeAt(0) !== 48 || dash === 1) &&
  (id.charCodeAt(dash + 1) !== 48 || id.length === dash + 2);

function compareAsNumbers(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am === bm ? as - bs : am - bm;
}

/**
 * One reader per process for every open feed: a single blocking XREAD over all the streams that
 * have subscribers, fanned out in memory, so a thousand watchers cost Redis no more reads than
 * one. A new subscriber first catches up from its own position with XRANGE (buffering what the
 * shared reader delivers meanwhile), then goes live; ids decide, so nothing is missed or doubled.
 */
export function createFeedReader(opts: { redis: RedisTarget; logger: Logger }) {
  // In a Redis Cluster the one XREAD over many streams works because they share a slot: the run
  // streams are `<stream key>:run:<runId>`, so they carry the stream key's hash tag (config.ts).
  const reader = createRedisClient(opts.redis, { maxRetriesPerRequest: null });
  const query = createRedisClient(opts.redis, { maxRetriesPerRequest: null });
  for (const client of [reader, query]) client.on('error', () => {});
  const subscribers = new Map<string, Set<Subscriber>>();
  const positions = new Map<string, string>();
  let running = true;
  let wake: (() => void) | undefined;

  const deliver = (sub: Subscriber, entry: Entry) => {
    if (compareIds(entry.id, sub.lastId) <= 0) return;
    sub.lastId = entry.id;
    sub.onEntry(entry);
  };

  async function loop() {
    while (running) {
      if (subscribers.size === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      const keys = [...positions.keys()];
      try {
        const result = (await reader.xread(
          'COUNT',
          READ_COUNT,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          ...keys,
          ...keys.map((k) => positions.get(k) as string),
        )) as [string, [string, string[]][]][] | null;
        for (const [key, entries] of result ?? []) {
          for (const [id, raw] of entries) {
            if (positions.has(key)) positions.set(key, id);
            const entry = { id, fields: toFields(raw) };
            for (const sub of subscribers.get(key) ?? []) {
              if (sub.live) deliver(sub, entry);
              else sub.buffered.push(entry);
            }
          }
        }
      } catch (error) {
        if (!running) break;
        opts.logger.debug({ err: error }, 'feed reader: read failed; retrying');
        await Bun.sleep(250);
      }
    }
  }
  const done = loop();

  /** The id of the newest entry of a stream, or 0-0 when it is empty. */
  async function lastIdOf(key: string): Promise<string> {
    const [newest] = (await query.xrevrange(key, '+', '-', 'COUNT', 1)) as [string, string[]][];
    return newest?.[0] ?? '0-0';
  }

  return {
    lastIdOf,

    /** The entry with this id on this stream, if it is still there (`id`: a stream id). */
    async entry(key: string, id: string): Promise<Entry | undefined> {
      const [found] = (await query.xrange(key, id, id)) as [string, string[]][];
      return found ? { id: found[0], fields: toFields(found[1]) } : undefined;
    },

    /** The oldest entry the stream still holds; undefined when it is empty or gone. */
    async firstEntry(key: string): Promise<Entry | undefined> {
      const [found] = (await query.xrange(key, '-', '+', 'COUNT', 1)) as [string, string[]][];
      return found ? { id: found[0], fields: toFields(found[1]) } : undefined;
    },

    /**
     * The newest entry of a stream (its id, or 0-0 when it is empty) and the newest entry that
     * `match` accepts, read backwards from the newest in pages that start small and grow: every
     * feed that opens asks this, and the match is often the newest entry (a finished run's
     * terminal event), so a match near the end costs one short read, not a page of 500.
     */
    async lastMatching(
      key: string,
      match: (fields: Fields) => boolean,
    ): Promise<{ lastId: string; found: Entry | undefined }> {
      let lastId: string | undefined;
      for (let to = '+', count = FIRST_PAGE; ; count = Math.min(count * 4, PAGE)) {
        const page = (await query.xrevrange(key, to, '-', 'COUNT', count)) as [string, string[]][];
        lastId ??= page[0]?.[0] ?? '0-0';
        for (const [id, raw] of page) {
          const fields = toFields(raw);
          if (match(fields)) return { lastId, found: { id, fields } };
        }
        const oldest = page.at(-1)?.[0];
        if (page.length < count || !oldest) return { lastId, found: undefined };
        to = `(${oldest}`;
      }
    },

    /**
     * Delivers every entry of `key` after `afterId` (in order, once), live until unsubscribed.
     * Returns the unsubscribe function.
     */
    async subscribe(key: string, afterId: string, onEntry: (entry: Entry) => void) {
      const sub: Subscriber = { key, lastId: afterId, live: false, buffered: [], onEntry };
      let set = subscribers.get(key);
      if (!set) {
        set = new Set();
        subscribers.set(key, set);
      }
      set.add(sub);
      if (!positions.has(key)) positions.set(key, await lastIdOf(key));
      wake?.();
      wake = undefined;
      const unsubscribe = () => {
        set.delete(sub);
        if (set.size === 0 && subscribers.get(key) === set) {
          subscribers.delete(key);
          positions.delete(key);
        }
      };
      try {
        // Catch up from the subscriber's own position, then hand over to the shared reader.
        for (let from = `(${afterId}`; ; ) {
          const page = (await query.xrange(key, from, '+', 'COUNT', PAGE)) as [string, string[]][];
          for (const [id, raw] of page) deliver(sub, { id, fields: toFields(raw) });
          if (page.length < PAGE) break;
          from = `(${sub.lastId}`;
        }
        for (const entry of sub.buffered) deliver(sub, entry);
        sub.buffered = [];
        sub.live = true;
      } catch (error) {
        unsubscribe();
        throw error;
      }
      return unsubscribe;
    },

    /** Open subscriptions and watched streams: what the leak tests count. */
    stats() {
      let open = 0;
      for (const set of subscribers.values()) open += set.size;
      return { subscribers: open, streams: positions.size };
    },

    async close() {
      running = false;
      wake?.();
      reader.disconnect();
      query.disconnect();
      await done;
    },
  };
}

export type FeedReader = ReturnType<typeof createFeedReader>;
