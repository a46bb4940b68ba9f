import { useEffect } from 'preact/hooks';

const THREADS_CHANGED = 'agent-run-console:threads-changed';

/** Something changed a thread (created, renamed, deleted, a run began or ended): lists reload. */
export const notifyThreadsChanged = () => dispatchEvent(new Event(THREADS_CHANGED));

export function useThreadsChanged(onChange: () => void) {
  useEffect(() => {
    addEventListener(THREADS_CHANGED, onChange);
    // The other tabs' changes show when this one is looked at again.
    addEventListener('focus', onChange);
    return () => {
      removeEventListener(THREADS_CHANGED, onChange);
      removeEventListener('focus', onChange);
    };
  }, [onChange]);
}
