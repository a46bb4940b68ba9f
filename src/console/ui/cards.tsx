import { prettyJson } from './format';

/** A tool call and, once it came, its result. */
export interface ToolCallView {
  toolCallId: string;
  name: string;
  arguments: string;
  result?: { output: string; isError: boolean };
}

export function ToolCard(props: { call: ToolCallView }) {
  const { call } = props;
  const state = !call.result ? 'waiting' : call.result.isError ? 'error' : 'ok';
  return (
    <article class={`tool-card ${state}`} aria-label={`tool call ${call.name}`}>
      <div class="tool-head">
        <span aria-hidden="true">⚙</span> <strong>{call.name}</strong>{' '}
        <code>{call.toolCallId}</code>
        <span class={`badge ${state}`}>
          {state === 'waiting' ? 'called' : state === 'error' ? 'error' : 'result'}
        </span>
      </div>
      <pre class="args">{prettyJson(call.arguments)}</pre>
      {call.result && <pre class="result">{call.result.output}</pre>}
    </article>
  );
}
