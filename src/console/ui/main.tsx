import { render } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { createConsoleApi, forgetKey, keyRequired, storedKey, storeKey } from './api';
import { ApiContext } from './context';
import { Conversation } from './conversation';
import { onLinkClick, useRoute } from './router';
import { RunPage } from './run-page';
import { ThreadList } from './threads';
import { useTitle } from './title';

/** The console: a key first when the server wants one, then threads, a thread, or a run. */
function App() {
  const [key, setKey] = useState(storedKey());
  const [rejected, setRejected] = useState(false);
  const route = useRoute();
  const api = useMemo(
    () =>
      createConsoleApi(() => {
        forgetKey();
        setRejected(true);
        setKey(undefined);
      }),
    // A new key, a new client.
    [key],
  );
  if (keyRequired && !key) {
    return (
      <KeyPrompt
        rejected={rejected}
        onKey={(k) => {
          storeKey(k);
          setRejected(false);
          setKey(k);
        }}
      />
    );
  }
  const threadId = route.page === 'thread' ? route.threadId : undefined;
  return (
    <ApiContext.Provider value={api}>
      <header class="top">
        <a href="/console" onClick={onLinkClick} class="brand">
          Agent run console
        </a>
        {key && (
          <button
            type="button"
            onClick={() => {
              forgetKey();
              setKey(undefined);
            }}
          >
            Forget API key
          </button>
        )}
      </header>
      <div class="layout">
        <ThreadList selected={threadId} />
        <main>
          {route.page === 'thread' && (
            <Conversation key={route.threadId} threadId={route.threadId} />
          )}
          {route.page === 'run' && <RunPage key={route.runId} runId={route.runId} />}
          {route.page === 'home' && <Home />}
        </main>
      </div>
    </ApiContext.Provider>
  );
}

function Home() {
  useTitle('Threads');
  return <p class="hint">Choose a thread, or start one with “New thread”.</p>;
}

function KeyPrompt(props: { rejected: boolean; onKey: (key: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <main class="key-prompt">
      <h1>Agent run console</h1>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (value.trim()) props.onKey(value.trim());
        }}
      >
        <label for="api-key">API key</label>
        <p class="hint">
          This server wants a key from its <code>API_KEYS</code>. It is kept for this tab only.
        </p>
        {props.rejected && (
          <p role="alert" class="error">
            That key was refused (401). Try another.
          </p>
        )}
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          value={value}
          onInput={(event) => setValue(event.currentTarget.value)}
          autofocus
        />
        <button type="submit">Use key</button>
      </form>
    </main>
  );
}

const root = document.getElementById('console');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
