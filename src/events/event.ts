import { newEventId } from '../ids';

export const EVENT_TYPES = [
  'agent.run.requested',
  'agent.run.started',
  'agent.run.delta',
  'agent.run.completed',
  'agent.run.failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface EventPayloads {
  /** `requestId`: set when a producer asked for the run through the stream. */
  'agent.run.requested': { messageId: string; model: string; content: string; requestId?: string };
  'agent.run.started': { attempt: number };
  /** A piece of the reply while the model streams it; a higher attempt starts the reply over. */
  'agent.run.delta': { attempt: number; index: number; text: string };
  'agent.run.completed': {
    messageId: string;
    model: string;
    content: string;
    usage: Usage;
    attempts: number;
    durationMs: number;
  };
  'agent.run.failed': { error: { code: string; message: string }; attempts: number };
}

/** One stream entry. `payload` is JSON text on the stream, as DESIGN.md's table says. */
export interface StreamEvent {
  type: EventType;
  eventId: string;
  runId: string;
  threadId: string;
  occurredAt: string;
  payload: string;
}

export function buildEvent<T extends EventType>(
  type: T,
  ids: { runId: string; threadId: string },
  payload: EventPayloads[T],
  now = new Date(),
): StreamEvent {
  return {
    type,
    eventId: newEventId(),
    runId: ids.runId,
    threadId: ids.threadId,
    occurredAt: now.toISOString(),
    payload: JSON.stringify(payload),
  };
}
