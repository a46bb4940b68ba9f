import type { Multitask, Store } from '../../db/store';
import type { Config } from '../config';
import { AppError, notFound } from '../errors';
import { buildEvent } from '../events/event';
import { bodyChecker } from '../http/body-check';
import { newMessageId, newRunId, newThreadId } from '../ids';
import { toMessageView } from '../messages/view';
import { type CancelDeps, settleCancels } from '../runs/cancel';
import { cancelledEvent } from '../runs/service';
import type { ThreadView } from '../threads/model';
import { toThreadView } from '../threads/view';
import { type AcceptedMessage, type PostMessageBody, postMessageBody } from './model';

/** Ingress may cancel runs (`multitask`): it needs what a cancel needs. */
export interface ChatDeps extends CancelDeps {
  config: Config;
}

/**
 * Accepts a message: validates it, commits thread + message + run + outbox row together, then
 * tries to deliver the outbox row at once. Whether or not Redis answers, the run will happen:
 * the relay delivers what this call could not.
 */
export async function acceptMessage(
  deps: ChatDeps,
  body: PostMessageBody,
  opts: { idempotencyKey?: string | null; requestId?: string } = {},
): Promise<AcceptedMessage> {
  const { requestId } = opts;
  // A stream request's requestId is its idempotency key, in a namespace of its own.
  const idempotencyKey = requestId === undefined ? opts.idempotencyKey : `stream:${requestId}`;
  const { chat } = deps.config;
  const content = body.content.trim();
  const length = [...content].length;
  if (length === 0 || length > chat.maxMessageChars) {
    throw new AppError(
      'invalid_request',
      `content must be 1 to ${chat.maxMessageChars} characters after trimming`,
      { field: 'content', length },
    );
  }
  const model = body.model ?? chat.defaultModel;
  const multitask = body.multitask ?? chat.multitask;
  for (const [field, text] of [
    ['content', content],
    ['model', model],
  ] as const) {
    if (!isStorableText(text)) {
      throw new AppError(
        'invalid_request',
        `${field} must be text without NUL characters or unpaired surrogates`,
        { field },
      );
    }
  }
  if (chat.allowedModels && !chat.allowedModels.includes(model)) {
    throw new AppError('model_not_allowed', `model "${model}" is not allowed`, {
      allowed: chat.allowedModels,
    });
  }
  if (requestId === undefined && idempotencyKey != null && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
    throw new AppError(
      'invalid_request',
      'Idempotency-Key must be 1 to 255 visible ASCII characters',
      {
        field: 'Idempotency-Key',
      },
    );
  }
  const threadId = body.threadId ?? newThreadId();
  const messageId = newMessageId();
  const runId = newRunId();
  const now = new Date();
  const response: AcceptedMessage = { threadId, messageId, runId, model, status: 'queued' };
  const result = await deps.db.insertRunRequest({
    threadId,
    messageId,
    runId,
    content,
    model,
    multitask,
    now,
    cancelledEvent: cancelledEvent(now),
    event: buildEvent(
      'agent.run.requested',
      { runId, threadId },
      { messageId, model, content, ...(requestId === undefined ? {} : { requestId }) },
      now,
    ),
    idempotency:
      idempotencyKey == null
        ? undefined
        : { key: idempotencyKey, requestHash: requestHash(content, body, multitask), response },
  });
  if (result.kind === 'conflict') {
    throw new AppError(
      'idempotency_key_reused',
      requestId === undefined
        ? 'this Idempotency-Key was used with a different request body'
        : 'this requestId was used with a different payload',
    );
  }
  if (result.kind === 'replayed') return result.response;
  if (result.kind === 'busy') {
    throw new AppError('thread_busy', `thread "${threadId}" has a run that has not finished`, {
      runId: result.runId,
    });
  }
  await deps.publisher.deliver(result.row);
  await settleCancels(deps, result.ended, result.cancelling);
  return response;
}

/** Visible ASCII, 1 to 255 characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * What makes two requests "the same" for one idempotency key: the normalised fields. The
 * multitask mode counts only when it is not `enqueue`, so that keys stored before it existed
 * still match their requests.
 */
function requestHash(content: string, body: PostMessageBody, multitask: Multitask): string {
  const fields: unknown[] = [content, body.threadId ?? null, body.model ?? null];
  if (multitask !== 'enqueue') fields.push(multitask);
  return new Bun.CryptoHasher('sha256').update(JSON.stringify(fields)).digest('hex');
}

export function listModels(config: Config) {
  return { default: config.chat.defaultModel, allowed: config.chat.allowedModels };
}

export async function getThreadView(db: Store, threadId: string): Promise<ThreadView> {
  const thread = await db.getThread(threadId);
  if (!thread) throw notFound('thread', threadId);
  return toThreadView(thread);
}

export async function listMessages(
  db: Store,
  threadId: string,
  query: { limit?: number; before?: string },
) {
  const thread = await db.getThread(threadId);
  if (!thread) throw notFound('thread', threadId);
  let beforeSeq: number | undefined;
  if (query.before !== undefined) {
    const cursor = await db.getMessage(query.before);
    if (!cursor || cursor.threadId !== threadId) {
      throw new AppError('invalid_cursor', `"${query.before}" is not a message of this thread`);
    }
    beforeSeq = cursor.seq;
  }
  const page = await db.listThreadMessages(threadId, { limit: query.limit ?? 50, beforeSeq });
  return {
    threadId,
    messages: page.messages.map(toMessageView),
    hasMore: page.hasMore,
    nextBefore: page.hasMore ? (page.messages[0]?.id ?? null) : null,
  };
}

/**
 * Validates a request body that did not come through Elysia (a stream request) against the very
 * schema the HTTP route uses, with the same error an HTTP client would get.
 */
export const parseMessageBody = bodyChecker(postMessageBody);

/**
 * Text every store keeps as sent: PostgreSQL's text cannot hold U+0000, and an unpaired
 * surrogate has no UTF-8 form (it would be stored as U+FFFD). Rejected on either engine, so a
 * client sees one rule whichever store runs.
 */
function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && text.isWellFormed();
}
