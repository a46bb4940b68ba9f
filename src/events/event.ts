import type { CancelledBy, MemoryReport } from '../../db/types';
import type { ErrorCode } from '../errors';
import type { RunFailure } from '../failures';
import { newEventId } from '../ids';

export const EVENT_TYPES = [
  'agent.run.requested',
  'agent.run.started',
  'agent.run.delta',
  'agent.run.tool_called',
  'agent.run.tool_result',
  'agent.run.requires_action',
  'agent.run.completed',
  'agent.run.failed',
  'agent.run.cancelled',
  'agent.thread.titled',
  'agent.thread.deleted',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The events that end a run: exactly one of them per run (an operator's retry adds another). */
export const TERMINAL_EVENT_TYPES = [
  'agent.run.completed',
  'agent.run.failed',
  'agent.run.cancelled',
] as const;

/** A tool result's `output` in `agent.run.tool_result`: its start; the message has it all. */
export const TOOL_RESULT_EVENT_CHARS = 4000;

export function isTerminalEvent(type: string | undefined): boolean {
  return (TERMINAL_EVENT_TYPES as readonly (string | undefined)[]).includes(type);
}

/**
 * An event about the thread rather than one run (`agent.thread.*`): its `runId` only says which
 * run it followed, so it goes on the main stream alone, not on that run's own stream (whose feed
 * has ended, and which expires RUN_FEED_TTL_S after the run's end).
 */
export function isThreadEvent(type: string | undefined): boolean {
  return type?.startsWith('agent.thread.') ?? false;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface EventPayloads {
  /** `requestId`: set when a producer asked for the run through the stream. */
  'agent.run.requested': { messageId: string; model: string; content: string; requestId?: string };
  /** `resumed`: the run goes on after its client answered (a pause spends no attempt). */
  'agent.run.started': { attempt: number; resumed?: true };
  /** A piece of the reply while the model streams it; a higher attempt starts the reply over. */
  'agent.run.delta': { attempt: number; index: number; text: string };
  /**
   * A tool call the model asked for, committed with the model's answer. `step`: the model call
   * (from 1) that asked; `arguments`: the JSON text the model produced; `source`: where the tool
   * lives (`unknown` for a name the run may not call: it gets an error result, no call).
   */
  'agent.run.tool_called': {
    step: number;
    toolCallId: string;
    name: string;
    arguments: string;
    source: 'http' | 'mcp' | 'client' | 'unknown';
  };
  /** A tool call's result, committed; `output` is its first 4000 characters. */
  'agent.run.tool_result': {
    step: number;
    toolCallId: string;
    name: string;
    isError: boolean;
    output: string;
    durationMs: number;
  };
  /**
   * The run paused for its client: the outputs of these client tool calls, or its decision on
   * these server tool calls (`approval`).
   */
  'agent.run.requires_action': {
    kind: 'tool_outputs' | 'approval';
    toolCalls: { toolCallId: string; name: string; arguments: string }[];
  };
  /** `steps`: the model calls of the run; `toolCalls`: the tool calls it made. */
  'agent.run.completed': {
    messageId: string;
    model: string;
    content: string;
    usage: Usage;
    attempts: number;
    durationMs: number;
    steps: number;
    toolCalls: number;
    /** The budget report of the run's last model call. */
    memory: MemoryReport;
  };
  'agent.run.failed': { error: RunFailure; attempts: number };
  /** `reason`: the client's, or null; `attempts`: spent before the cancel (0 if it never started). */
  'agent.run.cancelled': { reason: string | null; by: CancelledBy; attempts: number };
  /** The title model named the thread; `runId`: the completed run after which it was made. */
  'agent.thread.titled': { title: string };
  /** The thread and everything in it is gone; `runId` is empty. The runs it cancelled first. */
  'agent.thread.deleted': { cancelledRunIds: string[] };
}

/** One stream entry. `payload` is JSON text on the stream (docs/events.md). */
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

/** Why a producer's request or command was refused: the HTTP error it would get, or this. */
export interface RejectionError {
  code: ErrorCode | 'delivery_failed';
  message: string;
  details?: unknown;
}

/** An `agent.run.rejected` entry: no run, the producer's `requestId` instead. */
export interface Rejection {
  eventId: string;
  requestId: string;
  occurredAt: string;
  /** JSON text of `{requestId, error}`. */
  payload: string;
}

export function buildRejection(
  requestId: string,
  error: RejectionError,
  now = new Date(),
): Rejection {
  return {
    eventId: newEventId(),
    requestId,
    occurredAt: now.toISOString(),
    payload: JSON.stringify({ requestId, error }),
  };
}
