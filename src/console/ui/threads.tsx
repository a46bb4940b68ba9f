import { useCallback, useEffect, useState } from 'preact/hooks';
import type { Thread } from '../../client';
import { errorText } from './api';
import { notifyThreadsChanged, useThreadsChanged } from './bus';
import { useApi } from './context';
import { ErrorLine } from './error-line';
import { navigate, onLinkClick, threadPath } from './router';

/** The threads, most recently updated first: title (or id), metadata, busy or idle. */
export function ThreadList(props: { selected?: string }) {
  const api = useApi();
  const [threads, setThreads] = useState<Thread[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string>();
  const load = useCallback(async () => {
    const { data, error, response } = await api.GET('/api/chat/threads', {
      params: { query: { limit: 50 } },
    });
    if (!data) return setError(errorText(error, response));
    setThreads(data.threads);
    setNext(data.nextCursor);
  }, [api]);
  const more = async () => {
    if (!next) return;
    const { data, error, response } = await api.GET('/api/chat/threads', {
      params: { query: { limit: 50, cursor: next } },
    });
    if (!data) return setError(errorText(error, response));
    // A thread updated meanwhile moved to the front: it is listed once, where it is now.
    setThreads((shown) => {
      const ids = new Set(shown?.map((thread) => thread.id));
      return [...(shown ?? []), ...data.threads.filter((thread) => !ids.has(thread.id))];
    });
    setNext(data.nextCursor);
  };
  useEffect(() => void load(), [load]);
  useThreadsChanged(load);

  const create = async () => {
    const { data, error, response } = await api.POST('/api/chat/threads', { body: {} });
    if (!data) return setError(errorText(error, response));
    notifyThreadsChanged();
    navigate(threadPath(data.id));
  };

  return (
    <nav class="threads" aria-label="Threads">
      <div class="threads-head">
        <h2>Threads</h2>
        <button type="button" onClick={create}>
          New thread
        </button>
      </div>
      <ErrorLine error={error} />
      {threads?.length === 0 && <p class="hint">No threads yet.</p>}
      <ul>
        {threads?.map((thread) => (
          <li key={thread.id} class={thread.id === props.selected ? 'selected' : ''}>
            <a
              href={threadPath(thread.id)}
              onClick={onLinkClick}
              aria-current={thread.id === props.selected ? 'page' : undefined}
              data-thread-id={thread.id}
            >
              <span class="title">{thread.title ?? thread.id}</span>
              <span class={`status ${thread.status}`}>{thread.status}</span>
            </a>
            <small>
              {thread.messageCount} messages · {new Date(thread.updatedAt).toLocaleString()}
            </small>
            {Object.keys(thread.metadata).length > 0 && (
              <small class="metadata">
                {Object.entries(thread.metadata)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(' · ')}
              </small>
            )}
          </li>
        ))}
      </ul>
      {next && (
        <button type="button" onClick={more}>
          More threads
        </button>
      )}
    </nav>
  );
}
