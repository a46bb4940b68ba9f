import { useEffect, useRef, useState } from 'preact/hooks';
import type { Run } from '../../client';
import { authHeaders } from './api';
import type { ToolCallView } from './cards';
import { type FeedEvent, type FeedState, FINISHED, followFeed } from './feed';

/** One line of a run's timeline: an event as the feed sent it. */
export interface TimelineRow {
  /** The feed's id for it (unique within the run's feed). */
  id: string;
  type: string;
  occurredAt: string;
  attempt: number | null;
  summary: string;
}

/** What a run's feed has told so far. */
export interface LiveRun {
  rows: TimelineRow[];
  /** The reply as streamed (the attempt's deltas), or the completed event's content. */
  text: string;
  attempt: number;
  tools: ToolCallView[];
  /** The terminal event came (or a reset with a finished run). */
  finished: boolean;
  /** The run view a reset carried. */
  resetRun?: Run;
  feed: FeedState;
}

const EMPTY: LiveRun = {
  rows: [],
  text: '',
  attempt: 0,
  tools: [],
  finished: false,
  feed: 'connecting',
};

/** Applies one event: deltas build the reply (a higher attempt starts it over), tools the cards. */
export function applyEvent(state: LiveRun, event: FeedEvent): LiveRun {
  const p = event.payload ?? {};
  let { text, attempt, tools, finished, resetRun } = state;
  let summary = '';
  switch (event.type) {
    case 'agent.run.requested':
      summary = `model ${p.model}`;
      break;
    case 'agent.run.started':
      if (!p.resumed && p.attempt > attempt) text = '';
      attempt = p.attempt ?? attempt;
      summary = p.resumed ? 'resumed after the client answered' : `attempt ${p.attempt}`;
      break;
    case 'agent.run.delta':
      if (p.attempt > attempt) {
        text = '';
        attempt = p.attempt;
      }
      text += p.text ?? '';
      summary = JSON.stringify(p.text ?? '');
      break;
    case 'agent.run.tool_called':
      tools = [
        ...tools.filter((t) => t.toolCallId !== p.toolCallId),
        { toolCallId: p.toolCallId, name: p.name, arguments: p.arguments ?? '' },
      ];
      summary = `${p.name} (${p.source}) ${p.arguments ?? ''}`;
      break;
    case 'agent.run.tool_result':
      tools = tools.map((t) =>
        t.toolCallId === p.toolCallId
          ? { ...t, result: { output: p.output, isError: p.isError } }
          : t,
      );
      summary = `${p.name}${p.isError ? ' error' : ''} in ${p.durationMs} ms: ${String(p.output).slice(0, 200)}`;
      break;
    case 'agent.run.requires_action':
      summary = `waits for ${p.kind === 'approval' ? 'approval' : 'tool outputs'}: ${(p.toolCalls ?? []).map((c: { name: string }) => c.name).join(', ')}`;
      break;
    case 'agent.run.completed':
      text = p.content ?? text;
      finished = true;
      summary = `${p.steps ?? '?'} steps, ${p.toolCalls ?? 0} tool calls, ${p.usage?.totalTokens ?? '?'} tokens, ${p.durationMs} ms`;
      break;
    case 'agent.run.failed':
      finished = true;
      summary = `${p.error?.code}: ${p.error?.message}`;
      break;
    case 'agent.run.cancelled':
      finished = true;
      summary = `by ${p.by}${p.reason ? `: ${p.reason}` : ''}`;
      break;
    case 'agent.feed.reset':
      resetRun = p.run;
      finished = FINISHED.has(p.run?.status);
      if (p.run?.reply?.content) text = p.run.reply.content;
      summary = 'the earlier events are no longer kept: the run as stored now';
      break;
  }
  const row: TimelineRow = {
    id: event.id,
    type: event.type,
    occurredAt: event.occurredAt,
    attempt: p.attempt ?? (p.attempts !== undefined ? p.attempts : attempt || null),
    summary,
  };
  return { ...state, rows: [...state.rows, row], text, attempt, tools, finished, resetRun };
}

/**
 * Follows a run's feed (feed.ts: resumes after a drop). `onEvent` hears every event, after the
 * state took it (a page reloads the run view on lifecycle events).
 */
export function useRunFeed(runId: string, onEvent?: (event: FeedEvent) => void): LiveRun {
  const [state, setState] = useState<LiveRun>(EMPTY);
  const listener = useRef(onEvent);
  listener.current = onEvent;
  useEffect(() => {
    setState(EMPTY);
    return followFeed({
      url: `/api/chat/runs/${encodeURIComponent(runId)}/events`,
      headers: authHeaders,
      endsAfterTerminal: true,
      onEvent: (event) => {
        setState((s) => applyEvent(s, event));
        listener.current?.(event);
      },
      onState: (feed) => setState((s) => ({ ...s, feed })),
    });
  }, [runId]);
  return state;
}
