/**
 * How `bun run watch` prints a feed for a person: one line per event, the reply as it streams.
 * A thread feed has no deltas, so it prints each completed run's reply (`content`); a run feed
 * prints the reply again only when the deltas it showed do not add up to it (after a reset).
 */

/** An event's SSE data, as the feeds send it (docs/events.md, "Live feeds"). */
export interface FeedData {
  runId: string;
  threadId: string;
  payload: Record<string, unknown>;
}

interface RunView {
  id: string;
  status: string;
  attempts: number;
  error: { code: string; message: string } | null;
  reply: { content: string } | null;
  cancel: { reason: string | null; by: string } | null;
}

const attempts = (n: unknown) => `${n} attempt${n === 1 ? '' : 's'}`;
const quoted = (text: unknown, max = 200) => {
  const flat = String(text).replace(/\s+/g, ' ');
  return JSON.stringify(flat.length > max ? `${flat.slice(0, max - 1)}…` : flat);
};

/** A run view in one line: its status and what ended it. */
function describeRun(run: RunView): string {
  const parts = [`${run.id} ${run.status}`, attempts(run.attempts)];
  if (run.error) parts.push(`${run.error.code}: ${run.error.message}`);
  if (run.cancel) {
    parts.push(
      `cancel by ${run.cancel.by}${run.cancel.reason ? ` (${quoted(run.cancel.reason)})` : ''}`,
    );
  }
  if (run.reply) parts.push(`reply ${quoted(run.reply.content)}`);
  return parts.join(', ');
}

interface Memory {
  contextTokens: number;
  budgetTokens: number;
  systemTokens: number;
  summaryTokens: number;
  toolsTokens: number;
  windowTokens: number;
  windowMessages: number;
  summarisedMessages: number;
}

/** The budget report of a run's last model call, on one line. */
export function describeMemory(m: Memory): string {
  const sent = m.systemTokens + m.summaryTokens + m.toolsTokens + m.windowTokens;
  return (
    `memory: ${sent} of ${m.contextTokens} tokens sent — ${m.windowMessages} messages ` +
    `(${m.windowTokens} of a ${m.budgetTokens}-token window), summary ${m.summaryTokens} ` +
    `(covers ${m.summarisedMessages} messages), system ${m.systemTokens}, tools ${m.toolsTokens}`
  );
}

export function createFeedPrinter(feed: 'run' | 'thread', write: (text: string) => void) {
  let attempt = 0;
  let streamed = '';
  let midReply = false;
  const line = (text: string) => {
    if (midReply) write('\n');
    midReply = false;
    write(`${text}\n`);
  };

  const details: Record<string, (p: Record<string, unknown>) => string> = {
    'agent.run.requested': (p) => `${quoted(p.content)} (${p.model})`,
    'agent.run.started': (p) => `attempt ${p.attempt}${p.resumed ? ', resumed' : ''}`,
    'agent.run.completed': (p) =>
      `${attempts(p.attempts)}, ${JSON.stringify(p.usage)}, ${p.durationMs} ms`,
    'agent.run.failed': (p) => {
      const error = p.error as { code: string; message: string };
      return `${error.code}: ${error.message}, after ${attempts(p.attempts)}`;
    },
    'agent.run.cancelled': (p) =>
      `by ${p.by}${p.reason ? ` (${quoted(p.reason)})` : ''}, after ${attempts(p.attempts)}`,
  };

  function showReset(data: FeedData) {
    const p = data.payload;
    if (p.run) {
      line(
        `• agent.feed.reset: earlier events are gone; the run now: ${describeRun(p.run as RunView)}`,
      );
      return;
    }
    const thread = p.thread as { id: string; messageCount: number };
    const runs = p.runs as RunView[];
    line(
      `• agent.feed.reset: earlier events are gone; thread ${thread.id} now: ${thread.messageCount} messages, ${runs.length} latest runs (newest first)${runs.length ? ':' : ''}`,
    );
    for (const run of runs) line(`    ${describeRun(run)}`);
  }

  return {
    show(type: string, data: FeedData) {
      const p = data.payload;
      if (type === 'agent.run.delta') {
        if ((p.attempt as number) !== attempt) {
          attempt = p.attempt as number;
          streamed = '';
          line(`  reply (attempt ${attempt}):`);
          write('  ');
        }
        streamed += String(p.text);
        write(String(p.text));
        midReply = true;
        return;
      }
      if (type === 'agent.feed.reset') return showReset(data);
      const detail = details[type]?.(p) ?? JSON.stringify(p);
      line(`• ${type} ${data.runId} ${detail}`.trimEnd());
      if (type === 'agent.run.completed' && (feed === 'thread' || streamed !== p.content)) {
        line(`  reply: ${String(p.content)}`);
      }
      if (type === 'agent.run.completed' && p.memory)
        line(`  ${describeMemory(p.memory as Memory)}`);
    },
    end() {
      line('(feed ended)');
    },
  };
}
