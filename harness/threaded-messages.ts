export interface PostedMessage {
  /** Position in the whole send, 0-based. */
  index: number;
  threadId: string;
  /** Position within its thread, 0-based: the order the thread's messages were accepted in. */
  turn: number;
  content: string;
  status: number;
  /** Present on a 202. */
  runId?: string;
  messageId?: string;
}

/**
 * Posts `messages` chat messages over `threads` threads (message i goes to thread i % threads),
 * `concurrency` requests in flight at most, each thread's messages strictly in order: a message
 * is sent only once its thread's previous one was answered, so the order the server accepted
 * them in is `turn`. Threads interleave, so every thread has work from the start. Never throws:
 * a request that got no answer has status 0.
 */
export async function postThreadedMessages(opts: {
  baseUrl: string;
  messages: number;
  threads: number;
  concurrency: number;
  /** Thread ids are `<threadPrefix>-<n>`. */
  threadPrefix: string;
  /** Called after each answer, for progress. */
  onAnswer?: (posted: PostedMessage) => void;
}): Promise<PostedMessage[]> {
  const { baseUrl, messages, threads, concurrency, threadPrefix } = opts;
  const results: PostedMessage[] = new Array(messages);
  // done[i] settles when message i has its answer: message i + threads waits for it.
  const done: Promise<void>[] = new Array(messages);
  let next = 0;

  const post = async (index: number): Promise<PostedMessage> => {
    const threadId = `${threadPrefix}-${index % threads}`;
    const turn = Math.floor(index / threads);
    const content = `message ${turn} of ${threadId}`;
    try {
      const response = await fetch(`${baseUrl}/api/chat/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ content, threadId }),
      });
      const body = (await response.json().catch(() => ({}))) as {
        runId?: string;
        messageId?: string;
      };
      const { runId, messageId } = body;
      return { index, threadId, turn, content, status: response.status, runId, messageId };
    } catch {
      // No answer at all (the connection failed): status 0, for the caller to count.
      return { index, threadId, turn, content, status: 0 };
    }
  };

  const sender = async () => {
    while (next < messages) {
      const index = next++;
      const previous = index >= threads ? done[index - threads] : undefined;
      let settle = () => {};
      done[index] = new Promise<void>((resolve) => {
        settle = resolve;
      });
      await previous;
      const posted = await post(index);
      results[index] = posted;
      settle();
      opts.onAnswer?.(posted);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, messages) }, sender));
  return results;
}
