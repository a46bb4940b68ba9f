import { useState } from 'preact/hooks';
import type { Run } from '../../client';
import { errorText } from './api';
import { useApi } from './context';
import { prettyJson, UNFINISHED } from './format';

/** Cancel: while the run is queued, running or waiting for its client. */
export function CancelButton(props: { run: Pick<Run, 'id' | 'status'>; onDone?: () => void }) {
  const api = useApi();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  if (!UNFINISHED.has(props.run.status) || props.run.status === 'cancelling') return null;
  const cancel = async () => {
    setBusy(true);
    const { error, response } = await api.POST('/api/chat/runs/{runId}/cancel', {
      params: { path: { runId: props.run.id } },
      body: { reason: 'cancelled in the console' },
    });
    setBusy(false);
    if (error) setError(errorText(error, response));
    props.onDone?.();
  };
  return (
    <span class="cancel">
      <button type="button" class="danger" onClick={cancel} disabled={busy}>
        Cancel run
      </button>
      {error && (
        <span role="alert" class="error">
          {error}
        </span>
      )}
    </span>
  );
}

/**
 * What a paused run waits for (its `pendingAction`): approve or deny each server tool call, or
 * give the output of each client tool call. Every call is answered at once, as the API wants.
 */
export function ActionPanel(props: { run: Run; onDone?: () => void }) {
  const pending = props.run.status === 'requires_action' ? props.run.pendingAction : null;
  if (!pending) return null;
  return pending.kind === 'approval' ? (
    <Approvals runId={props.run.id} calls={pending.toolCalls} onDone={props.onDone} />
  ) : (
    <ToolOutputs runId={props.run.id} calls={pending.toolCalls} onDone={props.onDone} />
  );
}

type PendingCall = NonNullable<Run['pendingAction']>['toolCalls'][number];

function Approvals(props: { runId: string; calls: PendingCall[]; onDone?: () => void }) {
  const api = useApi();
  const [choices, setChoices] = useState<Record<string, boolean>>({});
  const [error, setError] = useState<string>();
  const [sending, setSending] = useState(false);
  const decided = props.calls.every((call) => call.toolCallId in choices);
  const send = async () => {
    setSending(true);
    const { error, response } = await api.POST('/api/chat/runs/{runId}/approvals', {
      params: { path: { runId: props.runId } },
      body: {
        decisions: props.calls.map((call) => ({
          toolCallId: call.toolCallId,
          approve: choices[call.toolCallId] === true,
        })),
      },
    });
    setSending(false);
    if (error) setError(errorText(error, response));
    props.onDone?.();
  };
  return (
    <section class="action" aria-label="Approval needed">
      <h3>Approval needed</h3>
      {props.calls.map((call) => (
        <div class="tool-card" key={call.toolCallId}>
          <div class="tool-head">
            <strong>{call.name}</strong> <code>{call.toolCallId}</code>
          </div>
          <pre>{prettyJson(call.arguments)}</pre>
          <div class="row">
            <button
              type="button"
              aria-pressed={choices[call.toolCallId] === true}
              onClick={() => setChoices({ ...choices, [call.toolCallId]: true })}
            >
              Approve {call.name}
            </button>
            <button
              type="button"
              aria-pressed={choices[call.toolCallId] === false}
              onClick={() => setChoices({ ...choices, [call.toolCallId]: false })}
            >
              Deny {call.name}
            </button>
          </div>
        </div>
      ))}
      <button type="button" class="primary" disabled={!decided || sending} onClick={send}>
        Send decisions
      </button>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </section>
  );
}

function ToolOutputs(props: { runId: string; calls: PendingCall[]; onDone?: () => void }) {
  const api = useApi();
  const [outputs, setOutputs] = useState<Record<string, string>>({});
  const [failed, setFailed] = useState<Record<string, boolean>>({});
  const [error, setError] = useState<string>();
  const [sending, setSending] = useState(false);
  const send = async () => {
    setSending(true);
    const { error, response } = await api.POST('/api/chat/runs/{runId}/tool-outputs', {
      params: { path: { runId: props.runId } },
      body: {
        outputs: props.calls.map((call) => ({
          toolCallId: call.toolCallId,
          output: outputs[call.toolCallId] ?? '',
          isError: failed[call.toolCallId] === true,
        })),
      },
    });
    setSending(false);
    if (error) setError(errorText(error, response));
    props.onDone?.();
  };
  return (
    <section class="action" aria-label="Client tool outputs needed">
      <h3>Your tools were called</h3>
      {props.calls.map((call) => {
        const id = `output-${call.toolCallId}`;
        return (
          <div class="tool-card" key={call.toolCallId}>
            <div class="tool-head">
              <strong>{call.name}</strong> <code>{call.toolCallId}</code>
            </div>
            <pre>{prettyJson(call.arguments)}</pre>
            <label for={id}>Output of {call.name}</label>
            <textarea
              id={id}
              rows={3}
              value={outputs[call.toolCallId] ?? ''}
              onInput={(e) => setOutputs({ ...outputs, [call.toolCallId]: e.currentTarget.value })}
            />
            <label>
              <input
                type="checkbox"
                checked={failed[call.toolCallId] === true}
                onChange={(e) =>
                  setFailed({ ...failed, [call.toolCallId]: e.currentTarget.checked })
                }
              />{' '}
              {call.name} failed (an error result)
            </label>
          </div>
        );
      })}
      <button type="button" class="primary" disabled={sending} onClick={send}>
        Send outputs
      </button>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </section>
  );
}
