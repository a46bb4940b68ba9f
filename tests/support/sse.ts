/** One event of an SSE feed, as a client sees it. */
export interface FeedEvent {
  id: string;
  event: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect the data freely
  data: any;
}

/**
 * Reads an SSE feed over real HTTP until it ends, or until `stopWhen` says so (then the client
 * disconnects, as a browser would when the tab closes).
 */
export async function readFeed(
  url: string,
  opts: {
    lastEventId?: string;
    stopWhen?: (events: FeedEvent[]) => boolean;
    headers?: Record<string, string>;
  } = {},
): Promise<{ status: number; headers: Headers; events: FeedEvent[]; ended: boolean }> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: {
      ...(opts.lastEventId ? { 'last-event-id': opts.lastEventId } : {}),
      ...opts.headers,
    },
    signal: controller.signal,
  });
  const events: FeedEvent[] = [];
  if (!response.ok || !response.body)
    return { status: response.status, headers: response.headers, events, ended: true };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
    if (done) return { status: response.status, headers: response.headers, events, ended: true };
    buffer += decoder.decode(value, { stream: true });
    let split = buffer.indexOf('\n\n');
    while (split >= 0) {
      const block = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      split = buffer.indexOf('\n\n');
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue; // keep-alive comment
        const colon = line.indexOf(':');
        if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
      }
      if (fields.data === undefined) continue;
      events.push({
        id: fields.id ?? '',
        event: fields.event ?? '',
        data: JSON.parse(fields.data),
      });
      if (opts.stopWhen?.(events)) {
        controller.abort();
        await reader.cancel().catch(() => {});
        return { status: response.status, headers: response.headers, events, ended: false };
      }
    }
  }
}
