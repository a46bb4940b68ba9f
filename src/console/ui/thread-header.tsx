import { useState } from 'preact/hooks';
import type { Thread } from '../../client';
import { errorText } from './api';
import { notifyThreadsChanged } from './bus';
import { useApi } from './context';
import { ErrorLine } from './error-line';

/** A thread's title, metadata and status, with Rename and Delete. */
export function ThreadHeader(props: {
  thread: Thread;
  onChanged: () => void;
  onDeleted: () => void;
}) {
  const api = useApi();
  const { thread } = props;
  const [renaming, setRenaming] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [title, setTitle] = useState('');
  const [error, setError] = useState<string>();
  const path = { threadId: thread.id };

  const rename = async () => {
    const { error, response } = await api.PATCH('/api/chat/threads/{threadId}', {
      params: { path },
      body: { title: title.trim() },
    });
    if (error) return setError(errorText(error, response));
    setRenaming(false);
    setError(undefined);
    notifyThreadsChanged();
    props.onChanged();
  };
  const remove = async () => {
    const { error, response } = await api.DELETE('/api/chat/threads/{threadId}', {
      params: { path },
    });
    if (error) return setError(errorText(error, response));
    props.onDeleted();
  };

  return (
    <header class="thread-header">
      {renaming ? (
        <form
          class="row"
          onSubmit={(event) => {
            event.preventDefault();
            void rename();
          }}
        >
          <label for="thread-title">Title</label>
          <input
            id="thread-title"
            value={title}
            maxLength={200}
            onInput={(e) => setTitle(e.currentTarget.value)}
            autofocus
          />
          <button type="submit" class="primary" disabled={!title.trim()}>
            Save title
          </button>
          <button type="button" onClick={() => setRenaming(false)}>
            Keep the title
          </button>
        </form>
      ) : (
        <div class="row">
          <h1>{thread.title ?? thread.id}</h1>
          <span class={`status ${thread.status}`}>{thread.status}</span>
          <button
            type="button"
            onClick={() => {
              setTitle(thread.title ?? '');
              setRenaming(true);
            }}
          >
            Rename
          </button>
          {confirming ? (
            <fieldset class="confirm">
              <legend>Delete this thread, its messages and runs?</legend>
              <button type="button" class="danger" onClick={remove}>
                Yes, delete
              </button>
              <button type="button" onClick={() => setConfirming(false)}>
                Keep it
              </button>
            </fieldset>
          ) : (
            <button type="button" class="danger" onClick={() => setConfirming(true)}>
              Delete thread
            </button>
          )}
        </div>
      )}
      <small>
        <code>{thread.id}</code> · {thread.messageCount} messages
        {Object.entries(thread.metadata).map(([k, v]) => ` · ${k}=${v}`)}
      </small>
      <ErrorLine error={error} />
    </header>
  );
}
