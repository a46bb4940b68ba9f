import { useCallback, useEffect, useState } from 'preact/hooks';
import type { Run } from '../../client';
import { ActionPanel, CancelButton } from './actions';
import { errorText } from './api';
import { useApi } from './context';
import { ErrorLine } from './error-line';
import type { FeedState } from './feed';
import { clock } from './format';
import { useRunFeed } from './live-run';
import { onLinkClick, threadPath } from './router';
import { useTitle } from './title';

/**
 * A run's page: its status, usage, memory budget report and error, Cancel and the answers it
 * may wait for, and its timeline: every event of its feed with its time and attempt.
 */
export function RunPage(props: { runId: string }) {
  const api = useApi();
  const [run, setRun] = useState<Run | null>();
  const [error, setError] = useState<string>();
  useTitle(`Run ${props.runId}${run ? ` (${run.status})` : ''}`);
  const load = useCallback(async () => {
    const { data, error, response } = await api.GET('/api/chat/runs/{runId}', {
      params: { path: { runId: props.runId } },
    });
    if (response.status === 404) return setRun(null);
    if (data) setRun(data);
    else setError(errorText(error, response));
  }, [api, props.runId]);
  useEffect(() => void load(), [load]);
  const live = useRunFeed(props.runId, (event) => {
    if (event.type !== 'agent.run.delta') void load();
  });

  if (run === null) return <p class="hint">There is no run {props.runId}.</p>;
  return (
    <section class="run-page" aria-label="Run">
      <header class="row">
        <h1>
          Run <code>{props.runId}</code>
        </h1>
        {run && <span class={`status ${run.status}`}>{run.status}</span>}
        {run && <CancelButton run={run} onDone={load} />}
      </header>
      <ErrorLine error={error} />
      {run && <RunFacts run={run} />}
      {run && <ActionPanel run={run} onDone={load} />}
      <h2>Reply</h2>
      <div class="bubble reply" aria-live="polite" data-run-reply>
        {live.text || run?.reply?.content || <span class="hint">no reply yet</span>}
      </div>
      <h2>Timeline</h2>
      <p class="hint" data-feed={live.feed}>
        {FEED_STATES[live.feed]}
      </p>
      <table class="timeline" aria-label="Timeline">
        <thead>
          <tr>
            <th scope="col">time</th>
            <th scope="col">attempt</th>
            <th scope="col">event</th>
            <th scope="col">details</th>
          </tr>
        </thead>
        <tbody>
          {live.rows.map((row) => (
            <tr key={row.id} data-id={row.id} data-type={row.type}>
              <td>{clock(row.occurredAt)}</td>
              <td>{row.attempt ?? ''}</td>
              <td>{row.type.replace(/^agent\./, '')}</td>
              <td>{row.summary}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/** What the run's feed is doing, said above its timeline. */
const FEED_STATES: Record<FeedState, string> = {
  connecting: 'Connecting to the run’s feed…',
  live: 'Live: new events appear as they happen.',
  reconnecting: 'The feed dropped: resuming after the last event…',
  ended: 'The run is over: its feed has ended.',
  failed: 'The feed could not be opened.',
};

function RunFacts(props: { run: Run }) {
  const { run } = props;
  const m = run.memory;
  return (
    <div class="facts">
      <dl>
        <dt>thread</dt>
        <dd>
          <a href={threadPath(run.threadId)} onClick={onLinkClick}>
            {run.threadId}
          </a>
        </dd>
        <dt>model</dt>
        <dd>{run.model}</dd>
        <dt>attempts</dt>
        <dd>{run.attempts}</dd>
        <dt>steps · tool calls</dt>
        <dd>
          {run.steps} · {run.toolCalls}
        </dd>
        <dt>usage</dt>
        <dd>
          {run.usage
            ? `${run.usage.promptTokens} prompt + ${run.usage.completionTokens} completion = ${run.usage.totalTokens} tokens`
            : '—'}
        </dd>
        <dt>created · started · finished</dt>
        <dd>
          {clock(run.createdAt)} · {clock(run.startedAt)} · {clock(run.finishedAt)}
        </dd>
        {run.error && (
          <>
            <dt>error</dt>
            <dd class="error">
              <code>{run.error.code}</code> {run.error.message}
            </dd>
          </>
        )}
        {run.cancel && (
          <>
            <dt>cancel</dt>
            <dd>
              by {run.cancel.by}
              {run.cancel.reason ? `: ${run.cancel.reason}` : ''}
            </dd>
          </>
        )}
      </dl>
      {m && (
        <table class="memory" aria-label="Memory budget">
          <caption>Memory budget (tokens)</caption>
          <tbody>
            {memoryRows(m).map(([name, value]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>{value}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** The budget report of the run's last model call, one line a part (docs/api.md, the run view). */
function memoryRows(m: NonNullable<Run['memory']>): [string, string | number][] {
  return [
    ['context window', m.contextTokens],
    ['budget for the window', m.budgetTokens],
    ['system prompt', m.systemTokens],
    ['summary', m.summaryTokens],
    ['tool definitions', m.toolsTokens],
    ['window', `${m.windowTokens} (${m.windowMessages} messages)`],
    ['summarised messages', m.summarisedMessages],
  ];
}
