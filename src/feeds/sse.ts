import type { Entry } from './feed-reader';
import type { Feed, FeedSink } from './service';

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

/** The HTTP answer to a feed: an SSE response, or an empty one when the feed is over. */
export function feedResponse(signal: AbortSignal, feed: Feed): Response {
  return feed.kind === 'ended' ? endedFeed() : sseResponse(signal, feed.open);
}

/**
 * A Server-Sent Events response. A comment goes out at once, so the client has the response
 * headers (and an EventSource opens) before the first event, however long that takes; then
 * `open` subscribes and returns its unsubscribe. The feed ends when `end()` is called or the
 * client goes away (`signal`), and then the subscription is always released.
 */
function sseResponse(signal: AbortSignal, open: (sink: FeedSink) => Promise<() => void>) {
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
      // A comment line now and then keeps proxies from closing an idle feed.
      keepAlive = setInterval(() => c.enqueue(encoder.encode(': keep-alive\n\n')), KEEP_ALIVE_MS);
      try {
        release = await open({
          send: (entry) => {
            if (!closed) c.enqueue(encoder.encode(formatEntry(entry)));
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

/** A feed that is already over: the stream ends at once. */
function endedFeed() {
  return new Response('', {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
  });
}
