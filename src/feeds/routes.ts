import { Elysia, t } from 'elysia';
import { errors } from '../http/error-schemas';
import { eventStream } from '../http/openapi';
import { runFeedEvent, threadFeedEvent } from './model';
import { type FeedDeps, openRunFeed, openThreadFeed } from './service';
import { feedResponse } from './sse';

const lastEventIdOf = (request: Request) => request.headers.get('last-event-id');

const framing =
  'text/event-stream: a `: connected` comment at once, then events: `id` (resume token, send ' +
  'it back as Last-Event-ID), `event` (the type) and `data` (one JSON object, as below). A ' +
  'comment every 15 s keeps an idle feed open. When the events after Last-Event-ID are no ' +
  'longer kept, the feed first sends one `agent.feed.reset` whose `id` is where it goes on from.';
const lastEventId = {
  name: 'Last-Event-ID',
  in: 'header' as const,
  required: false,
  description:
    'Resume after this event id: exactly the events after it, none twice. An id the stream no ' +
    'longer holds (expired or trimmed), never held, or that is not a stream id (`<ms>-<seq>`) ' +
    'gets an agent.feed.reset first, never an error.',
  schema: { type: 'string' as const },
};

/** Live feeds over Server-Sent Events (docs/events.md, "Live feeds"). */
export function feedRoutes(deps: FeedDeps) {
  return new Elysia({ name: 'feeds', prefix: '/api/chat', tags: ['feeds'] })
    .get(
      '/runs/:runId/events',
      async ({ params, request }) =>
        feedResponse(request.signal, await openRunFeed(deps, params.runId, lastEventIdOf(request))),
      {
        params: t.Object({ runId: t.String() }),
        response: {
          200: eventStream(runFeedEvent, `The run's feed. ${framing}`),
          401: errors.unauthorized,
          404: errors.notFound,
        },
        detail: {
          summary: "A run's events live, reply deltas included; ends after its terminal event",
          description:
            'agent.run.requested, agent.run.started, agent.run.delta {attempt, index, text} while ' +
            'the model streams (a higher attempt starts the reply over), then agent.run.completed, ' +
            'agent.run.failed or agent.run.cancelled, and the stream ends. A finished run replays ' +
            "and ends at once. A run reopened by an operator's retry goes on in the same feed: " +
            'it ends after the latest terminal event, and resuming from an earlier one gives what ' +
            "came after it. When the run's history (or what follows Last-Event-ID) is no longer " +
            'kept — its stream expired RUN_FEED_TTL_S after the run ended, or lost its oldest ' +
            'entries — the feed starts with agent.feed.reset, payload {run} (the run view), then ' +
            "goes on after the reset's id; a finished run sends only the reset, with its final view.",
          parameters: [lastEventId],
        },
      },
    )
    .get(
      '/threads/:threadId/events',
      async ({ params, request }) =>
        feedResponse(
          request.signal,
          await openThreadFeed(deps, params.threadId, lastEventIdOf(request)),
        ),
      {
        params: t.Object({ threadId: t.String() }),
        response: {
          200: eventStream(threadFeedEvent, `The thread's feed. ${framing}`),
          401: errors.unauthorized,
          404: errors.notFound,
        },
        detail: {
          summary: "A thread's lifecycle events live, from the moment of connection",
          description:
            'Open-ended: every lifecycle event of the thread from the main stream (no deltas); ' +
            'with Last-Event-ID, the events after it. When the main stream no longer holds that ' +
            'id (it is trimmed to about REDIS_STREAM_MAXLEN entries) or never did, the feed ' +
            'starts with agent.feed.reset (runId empty), payload {thread, runs}: the thread view ' +
            'and its 20 newest runs as run views, newest first; then the events after its id.',
          parameters: [lastEventId],
        },
      },
    );
}
