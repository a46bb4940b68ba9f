import type { Entry } from './feed-reader';
import { FEED_RESET, type Feed, type FeedReset } from './service';

const KEEP_ALIVE_MS = 15_000;
const encoder = new TextEncoder();

/** One SSE message: `id` is the stream entry id (the resume token), `data` the event as JSON. */
export function formatEntry(entry: Entry): string {
  const f = entry.fields;
  let payload: unknown = f.payload;
  try {
    payload = JSON.parse(f.payload ?? 'null');
  } catch {
    // a producer's malformed payload stays text
  }
  const data = {
    type: f.type,
    eventId: f.eventId,
    runId: f.runId,
    threadId: f.threadId,
    occurredAt: f.occurredAt,
    payload,
  };
  return `id: ${entry.id}\nevent: ${f.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Each entry's frame, encoded once however many feeds send it: the feed reader hands every
 * subscriber of a stream the same entry object, so a thousand watchers of one run cost one
 * JSON parse, one JSON text and one encoding an event, not a thousand. Weak: a frame lives no
 * longer than its entry.
 */
const frames = new WeakMap<Entry, Uint8Array>();

/** `formatEntry` as bytes, shared by every feed the entry goes to (never written to). */
export function encodeEntry(entry: Entry): Uint8Array {
  let frame = frames.get(entry);
  if (!frame) {
    frame = encoder.encode(formatEntry(entry));
    frames.set(entry, frame);
  }
  return frame;
}

/** A feed's reset (service.ts), framed like an event: `id` is where the feed goes on from. */
export function formatReset(reset: FeedReset): string {
  const { id, ...event } = reset;
  const data = { type: FEED_RESET, ...event };
  return `id: ${id}\nevent: ${FEED_RESET}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * The HTTP answer to a feed: an SSE response, or one holding at most the reset when the feed is
 * over.
 */
export function feedResponse(signal: AbortSignal, feed: Feed): Response {
  return feed.kind === 'ended' ? endedFeed(feed.reset) : sseResponse(signal, feed);
}

/**
 * A Server-Sent Events response. A comment goes out at once, so the client has the response
 * headers (and an EventSource opens) before the first event, however long that takes; then the
 * reset, if any; then `open` subscribes and returns its unsubscribe. The feed ends when `end()`
 * is called or the client goes away (`signal`), and then the subscription is always released.
 */
function sseResponse(signal: AbortSignal, feed: Extract<Feed, { kind: 'live' }>) {
  let release: (() => void) | undefined;
  let keepAlive: ReturnType<typeof setInterval> | undefined;
  let closed = false;
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  const finish = () => {
    if (closed) return;
    closed = true;
    clearInterval(keepAlive);
    release?.();
    try {
      controller?.close();
    } catch {
      // already closed by the client
    }
  };
  const stream = new ReadableStream<Uint8Array>({
    async start(c) {
      controller = c;
      signal.addEventListener('abort', finish);
      c.enqueue(encoder.encode(': connected\n\n'));
      if (feed.reset) c.enqueue(encoder.encode(formatReset(feed.reset)));
      // A comment line now and then keeps proxies from closing an idle feed.
      keepAlive = setInterval(() => c.enqueue(encoder.encode(': keep-alive\n\n')), KEEP_ALIVE_MS);
      try {
        release = await feed.open({
          send: (entry) => {
            if (!closed) c.enqueue(encodeEntry(entry));
          },
          end: finish,
        });
        if (closed) release(); // ended (or the client left) while subscribing
      } catch {
        finish();
      }
    },
    cancel: finish,
  });
  return new Response(stream, {
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    },
  });
}

/** A feed that is already over: the stream ends at once, after the reset if there is one. */
function endedFeed(reset: FeedReset | undefined) {
  return new Response(reset ? formatReset(reset) : '', {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
  });
}
