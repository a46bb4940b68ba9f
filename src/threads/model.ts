import { t } from 'elysia';
import { examples } from '../http/openapi';
import { THREAD_ID_PATTERN } from '../ids';

/** A metadata key: what `?metadata.<key>=` and a thread's metadata may name. */
export const METADATA_KEY_PATTERN = '^[A-Za-z0-9_.-]{1,64}$';
/** At most this many keys on one thread. */
export const MAX_METADATA_KEYS = 16;
/** A metadata value is a string of at most this many characters. */
export const MAX_METADATA_VALUE_CHARS = 512;
/** A user's title, after trimming. */
export const MAX_TITLE_CHARS = 200;
/** The thread list's page size: default and most. */
export const THREADS_PAGE = { default: 20, max: 100 } as const;

const metadataExample = { customer: 'cus_42', channel: 'web' };

/**
 * The integrator's own keys and values. Checked in the service too (keys, character counts,
 * storable text), so that both a body and a query meet one rule with one error.
 */
export const threadMetadata = t.Record(t.String(), t.String(), {
  maxProperties: MAX_METADATA_KEYS,
  description:
    `At most ${MAX_METADATA_KEYS} keys matching ${METADATA_KEY_PATTERN}, each a string of at ` +
    `most ${MAX_METADATA_VALUE_CHARS} characters (no U+0000, no unpaired surrogate).`,
  examples: [metadataExample],
});

/** A thread as the API shows it: create, list, GET, PATCH, and a thread feed's reset. */
export const threadView = t.Object(
  {
    id: t.String({ examples: ['thr_a1b2c3d4e5f6g7h8i9j0k1l2'] }),
    createdAt: t.String({ format: 'date-time' }),
    updatedAt: t.String({
      format: 'date-time',
      description:
        'Moves with each message, reply, summary, title and PATCH; the list sorts by it.',
    }),
    messageCount: t.Integer(),
    title: t.Nullable(
      t.String({
        description:
          "The title model's, made after the thread's first completed run (CHAT_TITLE_MODEL, at " +
          "most 80 characters), or a user's (PATCH), which is never overwritten; null until one " +
          'is given.',
        examples: ['Planning a week in Kyoto'],
      }),
    ),
    metadata: threadMetadata,
    status: t.Union([t.Literal('idle'), t.Literal('busy')], {
      description:
        '`busy` while the thread has a run that has not finished (queued, running, cancelling or ' +
        'requires_action).',
    }),
    lastRunId: t.Nullable(t.String({ description: "The thread's newest run; null without runs." })),
    summary: t.Nullable(t.String()),
    summaryThroughMessageId: t.Nullable(t.String()),
  },
  { $id: 'Thread', description: 'A thread: its timestamps, title, metadata, summary and status.' },
);
export type ThreadView = typeof threadView.static;

export const threadParams = t.Object({ threadId: t.String() });

export const createThreadBody = t.Object(
  {
    threadId: t.Optional(
      t.Nullable(
        t.String({
          pattern: THREAD_ID_PATTERN,
          description: 'Omit (or null) for a generated `thr_…` id; an existing one is a 409.',
        }),
      ),
    ),
    metadata: t.Optional(t.Nullable(threadMetadata)),
  },
  {
    $id: 'CreateThread',
    additionalProperties: false,
    // The first works every time; the second once (then it is a 409 thread_exists).
    ...examples({
      'A new thread with metadata': { metadata: metadataExample },
      'A thread of your own id': { threadId: 'support-4711', metadata: metadataExample },
    }),
  },
);
export type CreateThreadBody = typeof createThreadBody.static;

export const patchThreadBody = t.Object(
  {
    metadata: t.Optional(
      t.Nullable(threadMetadata, { description: 'Replaces the old metadata whole; {} clears it.' }),
    ),
    title: t.Optional(
      t.Nullable(
        t.String({
          description: `Trimmed; 1 to ${MAX_TITLE_CHARS} characters. A user's title: the title model never overwrites it.`,
        }),
      ),
    ),
  },
  {
    $id: 'PatchThread',
    additionalProperties: false,
    description: 'At least one of the two.',
    ...examples({
      'A title': { title: 'Refund for order 1234' },
      'New metadata': { metadata: { customer: 'cus_42' } },
    }),
  },
);
export type PatchThreadBody = typeof patchThreadBody.static;

/**
 * `limit` and `cursor`; the `metadata.<key>` filters are read from the URL by the service (a
 * schema cannot name keys it does not know), which also refuses any other parameter.
 */
export const threadsQuery = t.Object(
  {
    limit: t.Optional(
      t.Integer({ minimum: 1, maximum: THREADS_PAGE.max, default: THREADS_PAGE.default }),
    ),
    cursor: t.Optional(t.String({ description: 'The `nextCursor` of the previous page.' })),
  },
  { additionalProperties: true },
);

export const threadsPage = t.Object(
  {
    threads: t.Array(threadView),
    nextCursor: t.Nullable(
      t.String({ description: 'Pass as `cursor` for the next page; null on the last page.' }),
    ),
  },
  { $id: 'ThreadsPage', description: 'A page of threads, most recently updated first.' },
);
export type ThreadsPage = typeof threadsPage.static;
