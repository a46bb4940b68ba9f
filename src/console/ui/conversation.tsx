import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { Message, Run, Thread } from '../../client';
import { CONSOLE_PATH, consoleRunPath } from '../links';
import { ActionPanel, CancelButton } from './actions';
import { authHeaders, errorText } from './api';
import { notifyThreadsChanged } from './bus';
import { ToolCard } from './cards';
import { Composer } from './composer';
import { useApi } from './context';
import { ErrorLine } from './error-line';
import { followFeed } from './feed';
import { UNFINISHED } from './format';
import { useRunFeed } from './live-run';
import { navigate, onLinkClick } from './router';
import { ThreadHeader } from './thread-header';
import { useTitle } from './title';

/**
 * A thread: its messages in conversation order, tool calls as cards, and each unfinished run
 * live from its run feed (the reply streaming in). The thread's own feed keeps every tab on the
 * thread in step: a run another tab started shows up, streams and ends here too.
 */
export function Conversation(props: { threadId: string }) {
  const api = useApi();
  const { threadId } = props;
  const [thread, setThread] = useState<Thread | null>();
  const [messages, setMessages] = useState<Message[]>([]);
  const [older, setOlder] = useState(false);
  const [runs, setRuns] = useState<Record<string, Run>>({});
  const [live, setLive] = useState<string[]>([]);
  const [error, setError] = useState<string>();
  useTitle(thread?.title ?? threadId);
  const follow = useCallback(
    (runId: string) => setLive((ids) => (ids.includes(runId) ? ids : [...ids, runId])),
    [],
  );

  const reload = useCallback(async () => {
    const path = { threadId };
    const [t, m, r] = await Promise.all([
      api.GET('/api/chat/threads/{threadId}', { params: { path } }),
      api.GET('/api/chat/threads/{threadId}/messages', {
        params: { path, query: { limit: 200 } },
      }),
      api.GET('/api/chat/threads/{threadId}/runs', { params: { path, query: { limit: 20 } } }),
    ]);
    if (t.response.status === 404) return setThread(null);
    if (!t.data || !m.data || !r.data) return setError(errorText(t.error ?? m.error ?? r.error));
    setError(undefined);
    setThread(t.data);
    setMessages(m.data.messages);
    setOlder(m.data.hasMore);
    setRuns(Object.fromEntries(r.data.runs.map((run) => [run.id, run])));
    // Oldest first, so queued runs line up in the order they will run.
    for (const run of [...r.data.runs].reverse()) if (UNFINISHED.has(run.status)) follow(run.id);
  }, [api, threadId, follow]);

  const reloadRef = useRef(reload);
  reloadRef.current = reload;
  useEffect(
    () =>
      followFeed({
        url: `/api/chat/threads/${encodeURIComponent(threadId)}/events`,
        headers: authHeaders,
        endsAfterTerminal: false,
        // Loaded once the feed is open, so nothing falls between the load and the feed.
        onOpen: () => void reloadRef.current(),
        // A 404 (no such thread) or 401: the load says which, and shows it.
        onState: (state) => state === 'failed' && void reloadRef.current(),
        onEvent: (event) => {
          if (event.type === 'agent.thread.deleted') {
            setThread(null);
            notifyThreadsChanged();
            return;
          }
          if (event.type === 'agent.run.requested' && event.runId) follow(event.runId);
          if (event.type === 'agent.run.requested' || event.type === 'agent.thread.titled') {
            void reloadRef.current();
            notifyThreadsChanged();
          }
          if (event.type === 'agent.feed.reset') void reloadRef.current();
        },
      }),
    [threadId, follow],
  );

  const finished = useCallback(async (runId: string) => {
    await reloadRef.current();
    setLive((ids) => ids.filter((id) => id !== runId));
    notifyThreadsChanged();
  }, []);

  if (thread === null) {
    return (
      <section class="conversation">
        <p class="hint">
          There is no thread <code>{threadId}</code> (or it was deleted).{' '}
          <a href={CONSOLE_PATH} onClick={onLinkClick}>
            Back to the threads
          </a>
        </p>
      </section>
    );
  }
  return (
    <section class="conversation" aria-label="Conversation">
      {thread && (
        <ThreadHeader
          thread={thread}
          onChanged={reload}
          onDeleted={() => {
            notifyThreadsChanged();
            navigate(CONSOLE_PATH);
          }}
        />
      )}
      <ErrorLine error={error} />
      {older && (
        <p class="hint">
          The {messages.length} latest messages; the older ones are in{' '}
          <code>GET /api/chat/threads/{threadId}/messages?before=…</code>.
        </p>
      )}
      <MessageList messages={messages} runs={runs} live={live} />
      {live.map((runId) => (
        <LiveRunView key={runId} runId={runId} onFinished={finished} />
      ))}
      <Composer
        threadId={threadId}
        onPosted={(runId) => {
          follow(runId);
          void reload();
          notifyThreadsChanged();
        }}
      />
    </section>
  );
}

/**
 * The stored messages. A run still live shows its tool calls and reply from its feed
 * (LiveRunView), so only its user message is listed here, and without a status that would go stale.
 */
function MessageList(props: { messages: Message[]; runs: Record<string, Run>; live: string[] }) {
  const results = new Map(
    props.messages.filter((m) => m.role === 'tool').map((m) => [m.toolCallId, m]),
  );
  const shown = new Set<string | undefined>();
  return (
    <ol class="messages" aria-label="Messages">
      {props.messages.map((message) => {
        const live = props.live.includes(message.runId);
        if (message.role === 'user') {
          const run = live ? undefined : props.runs[message.runId];
          return (
            <li key={message.id} class="message user" data-message-id={message.id}>
              <div class="bubble">{message.content}</div>
              <a class="run-link" href={consoleRunPath(message.runId)} onClick={onLinkClick}>
                {run ? `run ${run.status}` : 'run'}
                {run?.error ? ` · ${run.error.code}` : ''}
              </a>
            </li>
          );
        }
        if (live) return null;
        if (message.role === 'tool') {
          if (shown.has(message.toolCallId)) return null;
          return (
            <li key={message.id} class="message tool">
              <ToolCard
                call={{
                  toolCallId: message.toolCallId ?? '',
                  name: message.name ?? '',
                  arguments: '',
                  result: { output: message.content, isError: message.isError === true },
                }}
              />
            </li>
          );
        }
        for (const call of message.toolCalls ?? []) shown.add(call.toolCallId);
        return (
          <li key={message.id} class="message assistant" data-message-id={message.id}>
            {message.toolCalls?.map((call) => {
              const result = results.get(call.toolCallId);
              return (
                <ToolCard
                  key={call.toolCallId}
                  call={{
                    ...call,
                    result: result && { output: result.content, isError: result.isError === true },
                  }}
                />
              );
            })}
            {message.content && <div class="bubble reply">{message.content}</div>}
          </li>
        );
      })}
    </ol>
  );
}

/** A run not finished yet: its tool cards and its reply as the feed streams them. */
function LiveRunView(props: { runId: string; onFinished: (runId: string) => void }) {
  const api = useApi();
  const [run, setRun] = useState<Run>();
  const loadRun = useCallback(async () => {
    const { data } = await api.GET('/api/chat/runs/{runId}', {
      params: { path: { runId: props.runId } },
    });
    if (data) setRun(data);
  }, [api, props.runId]);
  const state = useRunFeed(props.runId, (event) => {
    if (event.type !== 'agent.run.delta') void loadRun();
  });
  const { onFinished, runId } = props;
  useEffect(() => {
    if (state.finished) onFinished(runId);
  }, [state.finished, onFinished, runId]);
  const status = run?.status ?? 'queued';
  return (
    <div class="message assistant live" data-live-run={props.runId} aria-busy="true">
      <div class="live-head">
        <a href={consoleRunPath(props.runId)} onClick={onLinkClick}>
          run {status}
        </a>
        {state.feed === 'reconnecting' && <span class="hint"> · reconnecting…</span>}
        {run && <CancelButton run={run} onDone={loadRun} />}
      </div>
      {state.tools.map((call) => (
        <ToolCard key={call.toolCallId} call={call} />
      ))}
      {run && <ActionPanel run={run} onDone={loadRun} />}
      <div class="bubble reply streaming" aria-live="polite">
        {state.text || <span class="hint">…</span>}
      </div>
    </div>
  );
}
