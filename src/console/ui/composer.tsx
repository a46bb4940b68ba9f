import { useEffect, useRef, useState } from 'preact/hooks';
import type { Models, PostMessage, Tool } from '../../client';
import { errorText } from './api';
import { useApi } from './context';
import { ErrorLine } from './error-line';
import { newIdempotencyKey } from './format';

const MULTITASK = ['enqueue', 'reject', 'interrupt', 'rollback'] as const;

/**
 * The message box: model (from /api/chat/models), server tools (from /api/chat/tools), what to do
 * when the thread is busy, and Send. A message goes with an Idempotency-Key made for its body:
 * a double click, or a retry after a lost answer, makes one run.
 */
export function Composer(props: { threadId: string; onPosted: (runId: string) => void }) {
  const api = useApi();
  const [models, setModels] = useState<Models>();
  const [tools, setTools] = useState<Tool[]>([]);
  const [content, setContent] = useState('');
  const [model, setModel] = useState('');
  const [chosen, setChosen] = useState<string[]>([]);
  const [multitask, setMultitask] = useState('');
  const [error, setError] = useState<string>();
  const [sending, setSending] = useState(false);
  const inFlight = useRef(false);
  const lastTry = useRef<{ body: string; key: string } | undefined>(undefined);

  useEffect(() => {
    void api.GET('/api/chat/models').then(({ data }) => {
      if (!data) return;
      setModels(data);
      setModel(data.default);
    });
    void api.GET('/api/chat/tools').then(({ data }) => data && setTools(data.tools));
  }, [api]);

  const send = async () => {
    if (inFlight.current || !content.trim()) return;
    inFlight.current = true;
    setSending(true);
    setError(undefined);
    const body: PostMessage = { content, threadId: props.threadId };
    if (model) body.model = model;
    if (chosen.length > 0) body.tools = chosen;
    if (multitask) body.multitask = multitask as PostMessage['multitask'];
    // The same body keeps its key (a retry is the same message); another body gets a new one.
    const text = JSON.stringify(body);
    const key = lastTry.current?.body === text ? lastTry.current.key : newIdempotencyKey();
    lastTry.current = { body: text, key };
    try {
      const { data, error, response } = await api.POST('/api/chat/messages', {
        body,
        headers: { 'idempotency-key': key },
      });
      if (data) {
        setContent('');
        lastTry.current = undefined;
        props.onPosted(data.runId);
      } else setError(errorText(error, response));
    } catch {
      setError('the server did not answer; Send again sends the same message once');
    } finally {
      inFlight.current = false;
      setSending(false);
    }
  };

  return (
    <form
      class="composer"
      aria-label="New message"
      onSubmit={(event) => {
        event.preventDefault();
        void send();
      }}
    >
      <label for="message">Message</label>
      <textarea
        id="message"
        rows={3}
        value={content}
        placeholder="Write a message (Ctrl+Enter sends)"
        onInput={(event) => setContent(event.currentTarget.value)}
        onKeyDown={(event) => {
          if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
            event.preventDefault();
            void send();
          }
        }}
      />
      <div class="row">
        <label for="model">Model</label>

        {models?.allowed ? (
          <select id="model" value={model} onChange={(e) => setModel(e.currentTarget.value)}>
            {models.allowed.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        ) : (
          <input
            id="model"
            value={model}
            list="console-models"
            onInput={(e) => setModel(e.currentTarget.value)}
          />
        )}
        <datalist id="console-models">{models && <option value={models.default} />}</datalist>

        <label for="multitask">When busy</label>
        <select
          id="multitask"
          value={multitask}
          onChange={(e) => setMultitask(e.currentTarget.value)}
        >
          <option value="">server default</option>
          {MULTITASK.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
        <button type="submit" class="primary" disabled={sending || !content.trim()}>
          Send
        </button>
      </div>
      {tools.length > 0 && (
        <fieldset class="tools">
          <legend>Tools</legend>
          {tools.map((tool) => (
            <label key={tool.name} title={tool.description}>
              <input
                type="checkbox"
                checked={chosen.includes(tool.name)}
                onChange={(e) =>
                  setChosen(
                    e.currentTarget.checked
                      ? [...chosen, tool.name]
                      : chosen.filter((name) => name !== tool.name),
                  )
                }
              />{' '}
              {tool.name}
              {tool.approval ? ' (asks approval)' : ''}
            </label>
          ))}
        </fieldset>
      )}
      <ErrorLine error={error} />
    </form>
  );
}
