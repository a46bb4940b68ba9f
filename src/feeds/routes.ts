import { Elysia, t } from 'elysia';
import { errors } from '../http/error-schemas';
import { type FeedDeps, openRunFeed, openThreadFeed } from './service';
import { feedResponse } from './sse';

const lastEventIdOf = (request: Request) => request.headers.get('last-event-id');

const sse = t.String({
  description:
    'text/event-stream: `id` (resume token, send it back as Last-Event-ID), `event` (the type) ' +
    'and `data` (the event as JSON: type, eventId, runId, threadId, occurredAt, payload).',
});
const lastEventId = {
  name: 'Last-Event-ID',
  in: 'header' as const,
  required: false,
  description: 'Resume after this event id: exactly the events after it, none twice.',
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
        response: { 200: sse, 401: errors.unauthorized, 404: errors.notFound },
        detail: {
          summary: "A run's events live, reply deltas included; ends after its terminal event",
          description:
            'agent.run.requested, agent.run.started, agent.run.delta {attempt, index, text} while ' +
            'the model streams (a higher attempt starts the reply over), then agent.run.completed ' +
            'or agent.run.failed, and the stream ends. A finished run replays and ends at once.',
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
        response: { 200: sse, 401: errors.unauthorized, 404: errors.notFound },
        detail: {
          summary: "A thread's lifecycle events live, from the moment of connection",
          parameters: [lastEventId],
        },
      },
    );
}
