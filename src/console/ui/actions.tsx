import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Run } from '../../client';
import { errorText } from './api';
import { useApi } from './context';
import { ErrorLine } from './error-line';
import { prettyJson, UNFINISHED } from './format';

/** What a call to the API gave back, as the typed client has it. */
type Answer = { error?: unknown; response: Response };

/**
 * One request at a time from a button: `sending` while it is out, its error (code: message)
 * after; `onDone` hears of the end either way (the page reads the run again).
 */
function useSubmit(request: () => Promise<Answer>, onDone?: () => void) {
  const [error, setError] = useState<string>();
  const [sending, setSending] = useState(false);
  const submit = async () => {
    setSending(true);
    const { error, response } = await request();
    setSending(false);
    setError(error ? errorText(error, response) : undefined);
    onDone?.();
  };
  return { error, sending, submit };
}

/** Cancel: while the run is queued, running or waiting for its client. */
export function CancelButton(props: { run: Pick<Run, 'id' | 'status'>; onDone?: () => void }) {
  const api = useApi();
  const { error, sending, submit } = useSubmit(
    () =>
      api.POST('/api/chat/runs/{runId}/cancel', {
        params: { path: { runId: props.run.id } },
        body: { reason: 'cancelled in the console' },
      }),
    props.onDone,
  );
  if (!UNFINISHED.has(props.run.status) || props.run.status === 'cancelling') return null;
  return (
    <span class="cancel">
      <button type="button" class="danger" onClick={submit} disabled={sending}>
        Cancel run
      </button>
      <ErrorLine error={error} />
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
interface AnswerProps {
  runId: string;
  calls: PendingCall[];
  onDone?: () => void;
}

/** The frame of an answer: a title, one card per pending call, one button that sends them all. */
function AnswerForm(props: {
  title: string;
  calls: PendingCall[];
  children: (call: PendingCall) => ComponentChildren;
  submitLabel: string;
  ready: boolean;
  state: ReturnType<typeof useSubmit>;
}) {
  return (
    <section class="action" aria-label={props.title}>
      <h3>{props.title}</h3>
      {props.calls.map((call) => (
        <div class="tool-card" key={call.toolCallId}>
          <div class="tool-head">
            <strong>{call.name}</strong> <code>{call.toolCallId}</code>
          </div>
          <pre>{prettyJson(call.arguments)}</pre>
          {props.children(call)}
        </div>
      ))}
      <button
        type="button"
        class="primary"
        disabled={!props.ready || props.state.sending}
        onClick={props.state.submit}
      >
        {props.submitLabel}
      </button>
      <ErrorLine error={props.state.error} />
    </section>
  );
}

function Approvals(props: AnswerProps) {
  const api = useApi();
  const [choices, setChoices] = useState<Record<string, boolean>>({});
  const state = useSubmit(
    () =>
      api.POST('/api/chat/runs/{runId}/approvals', {
        params: { path: { runId: props.runId } },
        body: {
          decisions: props.calls.map((call) => ({
            toolCallId: call.toolCallId,
            approve: choices[call.toolCallId] === true,
          })),
        },
      }),
    props.onDone,
  );
  return (
    <AnswerForm
      title="Approval needed"
      calls={props.calls}
      submitLabel="Send decisions"
      ready={props.calls.every((call) => call.toolCallId in choices)}
      state={state}
    >
      {(call) => (
        <div class="row">
          {[true, false].map((approve) => (
            <button
              key={String(approve)}
              type="button"
              aria-pressed={choices[call.toolCallId] === approve}
              onClick={() => setChoices({ ...choices, [call.toolCallId]: approve })}
            >
              {approve ? 'Approve' : 'Deny'} {call.name}
            </button>
          ))}
        </div>
      )}
    </AnswerForm>
  );
}

function ToolOutputs(props: AnswerProps) {
  const api = useApi();
  const [outputs, setOutputs] = useState<Record<string, string>>({});
  const [failed, setFailed] = useState<Record<string, boolean>>({});
  const state = useSubmit(
    () =>
      api.POST('/api/chat/runs/{runId}/tool-outputs', {
        params: { path: { runId: props.runId } },
        body: {
          outputs: props.calls.map((call) => ({
            toolCallId: call.toolCallId,
            output: outputs[call.toolCallId] ?? '',
            isError: failed[call.toolCallId] === true,
          })),
        },
      }),
    props.onDone,
  );
  return (
    <AnswerForm
      title="Your tools were called"
      calls={props.calls}
      submitLabel="Send outputs"
      ready
      state={state}
    >
      {(call) => (
        <>
          <label for={`output-${call.toolCallId}`}>Output of {call.name}</label>
          <textarea
            id={`output-${call.toolCallId}`}
            rows={3}
            value={outputs[call.toolCallId] ?? ''}
            onInput={(e) => setOutputs({ ...outputs, [call.toolCallId]: e.currentTarget.value })}
          />
          <label>
            <input
              type="checkbox"
              checked={failed[call.toolCallId] === true}
              onChange={(e) => setFailed({ ...failed, [call.toolCallId]: e.currentTarget.checked })}
            />{' '}
            {call.name} failed (an error result)
          </label>
        </>
      )}
    </AnswerForm>
  );
}
