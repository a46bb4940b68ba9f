import { init } from '@paralleldrive/cuid2';

/** 24 lowercase alphanumerics, the first a letter (Cuid2). */
const cuid = init({ length: 24 });

export const newThreadId = () => `thr_${cuid()}`;
export const newMessageId = () => `msg_${cuid()}`;
export const newRunId = () => `run_${cuid()}`;
export const newEventId = () => `evt_${cuid()}`;

/** What a client may supply as a thread id. */
export const THREAD_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
