/** One Server-Sent Event as the feeds send it (docs/events.md, "Live feeds"). */
export interface FeedEvent {
  /** The resume token: sent back as Last-Event-ID after a dropped connection. */
  id: string;
  type: string;
  runId: string;
  threadId: string;
  occurredAt: string;
  eventId?: string;
  // biome-ignore lint/suspicious/noExplicitAny: each event type has its own payload
  payload: any;
}

export type FeedState = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'failed';

export interface FeedOptions {
  url: string;
  /** The request headers (the API key), read again on every connection. */
  headers: () => Record<string, string>;
  onEvent: (event: FeedEvent) => void;
  /** The feed opened (its headers came): what happened before is now safe to load. */
  onOpen?: () => void;
  onState?: (state: FeedState, detail?: string) => void;
  /** A run feed ends after its terminal event; a thread feed never ends by itself. */
  endsAfterTerminal: boolean;
}

const TERMINAL = new Set(['agent.run.completed', 'agent.run.failed', 'agent.run.cancelled']);
export const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/**
 * Follows a feed with `fetch`, not EventSource, because EventSource cannot send the
 * `Authorization` header that API_KEYS asks for. A dropped connection is opened again with
 * `Last-Event-ID: <the last id seen>`, so the server sends exactly what came after it: nothing
 * twice, nothing missing (or an `agent.feed.reset` first, when that is no longer kept).
 * Returns a function that stops it.
 */
export function followFeed(opts: FeedOptions): () => void {
  const stop = new AbortController();
  let lastId: string | undefined;
  let sawTerminal = false;
  let retryMs = 500;

  const connect = async () => {
    while (!stop.signal.aborted) {
      opts.onState?.(lastId ? 'reconnecting' : 'connecting');
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream', ...opts.headers() };
        if (lastId) headers['last-event-id'] = lastId;
        const response = await fetch(opts.url, { headers, signal: stop.signal });
        if (response.status >= 400 && response.status < 500) {
          // A 401 or a 404 will not mend by asking again.
          opts.onState?.('failed', `${response.status}`);
          return;
        }
        // A 5xx (the database not answering: 503) may: asked again below, after a pause.
        if (!response.ok || !response.body) throw new Error(`feed answered ${response.status}`);
        opts.onState?.('live');
        opts.onOpen?.();
        await readEvents(response.body, (event) => {
          lastId = event.id;
          retryMs = 500;
          // A reset carrying a finished run's view is the end as well (its stream expired).
          sawTerminal =
            TERMINAL.has(event.type) ||
            (event.type === 'agent.feed.reset' && FINISHED.has(event.payload?.run?.status));
          opts.onEvent(event);
        });
        if (opts.endsAfterTerminal && sawTerminal) {
          opts.onState?.('ended');
          return;
        }
      } catch {
        if (stop.signal.aborted) return;
      }
      // The connection dropped (or closed early): wait a little, then resume after lastId.
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      retryMs = Math.min(retryMs * 2, 10_000);
    }
  };
  void connect();
  return () => stop.abort();
}

/** Reads SSE frames off a body: blank-line separated, `id:`, `event:`, `data:`; comments skipped. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: FeedEvent) => void) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseFrame(frame);
      if (event) onEvent(event);
      end = buffer.indexOf('\n\n');
    }
  }
}

function parseFrame(frame: string): FeedEvent | undefined {
  let id = '';
  let data = '';
  for (const line of frame.split('\n')) {
    if (line.startsWith('id:')) id = line.slice(3).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trimStart();
  }
  if (!data) return undefined;
  try {
    return { ...JSON.parse(data), id } as FeedEvent;
  } catch {
    return undefined;
  }
}
