import { useEffect } from 'preact/hooks';

/** The tab's title names what it shows (a thread's title, a run's id): tabs and history tell apart. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · Console · agent run server`;
  }, [title]);
}
