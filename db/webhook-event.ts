import type { Event } from './store';

/**
 * An event as the feeds send it (`{type, eventId, runId, threadId, occurredAt, payload}`), as
 * JSON text: what a webhook delivery carries. The stored payload is JSON text already, so it is
 * spliced in, not parsed and written again.
 */
export function deliveryEvent(event: Event): string {
  const head = JSON.stringify({
    type: event.type,
    eventId: event.eventId,
    runId: event.runId,
    threadId: event.threadId,
    occurredAt: event.occurredAt,
  });
  return `${head.slice(0, -1)},"payload":${event.payload}}`;
}

/** A run's own event (`agent.run.*`), which a message's own webhook URL is sent. */
export function isRunEvent(type: string): boolean {
  return type.startsWith('agent.run.');
}
