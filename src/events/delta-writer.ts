import type { RedisClient } from '../redis/client';
import { buildEvent } from './event';
import { appendDelta, type StreamTarget } from './stream-writer';

/** At most one write per this many ms… */
const FLUSH_MS = 50;
/** …unless this many characters are waiting. */
const FLUSH_CHARS = 64;

/**
 * Batches the pieces of a streamed reply into `agent.run.delta` entries on the run's stream, so
 * a fast model does not cost one Redis write per token. Writes go out in order; `close()`
 * flushes the rest and waits for them, so every delta precedes the terminal event.
 */
export function createDeltaWriter(opts: {
  redis: RedisClient;
  stream: StreamTarget;
  ids: { runId: string; threadId: string };
  attempt: number;
  /**
   * The delivery of the attempt's events so far (its `started`, then each committed step's
   * tool calls and results): each write of deltas waits for it, and is dropped when they were
   * left to the relay (false), so that no delta ever precedes an event committed before it on
   * the run's stream — a reply's text never overtakes the tool result it answers. Only live
   * text is lost that way; the reply is whole in the terminal event.
   */
  after?: () => Promise<boolean>;
}) {
  let buffer = '';
  let index = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let writes: Promise<unknown> = Promise.resolve();

  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return;
    const event = buildEvent('agent.run.delta', opts.ids, {
      attempt: opts.attempt,
      index: index++,
      text: buffer,
    });
    buffer = '';
    const pipeline = opts.redis.pipeline();
    appendDelta(pipeline, opts.stream, event);
    // Chained, so deltas land in order, each after the events committed before it was written;
    // a failed write only loses live text, never the reply.
    writes = writes
      .then(() => opts.after?.() ?? true)
      .then((delivered) => (delivered ? pipeline.exec() : undefined))
      .catch(() => {});
  };

  return {
    push(text: string) {
      buffer += text;
      if (buffer.length >= FLUSH_CHARS) flush();
      else timer ??= setTimeout(flush, FLUSH_MS);
    },
    async close() {
      flush();
      await writes;
    },
  };
}
