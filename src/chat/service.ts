import type { Multitask, Store } from '../../db/store';
import type { ClientTool } from '../../db/types';
import type { Config } from '../config';
import { AppError, notFound } from '../errors';
import { buildEvent } from '../events/event';
import { bodyChecker } from '../http/body-check';
import { newMessageId, newRunId, newThreadId } from '../ids';
import { promptBudget } from '../memory/budget';
import { messageTokens } from '../memory/tokens';
import { toMessageView } from '../messages/view';
import { type CancelDeps, settleCancels } from '../runs/cancel';
import { cancelledEvent } from '../runs/service';
import { isStorableText, isStorableValue } from '../storable-text';
import { createSchemaCompiler } from '../tools/json-schema';
import { isAllowedMessageWebhook } from '../webhooks/urls';
import type { ToolRegistry } from '../tools/service';
import {
  type AcceptedMessage,
  IDEMPOTENCY_KEY_PATTERN,
  type PostMessageBody,
  postMessageBody,
} from './model';

/** Ingress may cancel runs (`multitask`): it needs what a cancel needs. */
export interface ChatDeps extends CancelDeps {
  config: Config;
  /**
   * Resolves a message's `tools` (names, `<server>__*`) to the tools the run may call; `get`
   * tells a client tool's name from a server tool's.
   */
  tools: Pick<ToolRegistry, 'resolve' | 'get'>;
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
  // Counted once here and stored with the message. One the model's prompt could never hold,
  // whatever memory leaves out, is refused before anything is stored.
  const tokens = messageTokens({ content });
  const budget = promptBudget(deps.config, model);
  if (tokens > budget) {
    throw new AppError(
      'message_too_long',
      `the message is ${tokens} tokens; model "${model}" takes at most ${budget} in one message`,
      { tokens, budget },
    );
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
  const webhookUrl = body.webhook?.url ?? null;
  if (webhookUrl !== null && !isAllowedMessageWebhook(deps.config, webhookUrl)) {
    throw new AppError(
      'webhook_not_allowed',
      deps.config.webhooks.allowedUrls.length === 0
        ? 'per-message webhooks are off: WEBHOOK_ALLOWED_URLS is empty'
        : 'webhook.url matches no prefix of WEBHOOK_ALLOWED_URLS',
      { field: 'webhook/url' },
    );
  }
  const tools = resolveTools(deps, body.tools);
  const clientTools = checkClientTools(deps, body.clientTools);
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
    tokens,
    model,
    multitask,
    tools,
    clientTools,
    webhookUrl,
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

/**
 * The tools a run may call, resolved now (a `<server>__*` means that server's tools at this
 * moment). The client's own list is strict: an unknown name is a 400 `tool_not_found`, before
 * anything is stored. CHAT_DEFAULT_TOOLS is the operator's, and an MCP server it names may not
 * be connected yet: a default not known now is left out with a warning rather than refusing
 * every message that names no tools.
 */
function resolveTools(deps: ChatDeps, requested: string[] | null | undefined): string[] {
  if (requested != null) return deps.tools.resolve(requested);
  const resolved = new Set<string>();
  for (const name of deps.config.tools.defaultTools) {
    try {
      for (const tool of deps.tools.resolve([name])) resolved.add(tool);
    } catch (error) {
      if (!(error instanceof AppError) || error.code !== 'tool_not_found') throw error;
      deps.logger.warn(
        { tool: name },
        `CHAT_DEFAULT_TOOLS: "${name}" is not a known tool now; the run goes without it`,
      );
    }
  }
  return [...resolved];
}

/**
 * The client's own tools, checked before anything is stored: each name once, none a server
 * tool's (the model must know which side answers a call), parameters a JSON Schema object that
 * compiles, and text every store keeps. A fresh compiler each time: ajv caches every schema it
 * compiles, and a long-lived one would grow with every message.
 */
function checkClientTools(deps: ChatDeps, declared: PostMessageBody['clientTools']): ClientTool[] {
  if (declared == null || declared.length === 0) return [];
  const compiler = createSchemaCompiler();
  const seen = new Set<string>();
  return declared.map((tool, index) => {
    const field = `clientTools/${index}`;
    if (seen.has(tool.name)) {
      throw new AppError('invalid_request', `client tool "${tool.name}" is declared twice`, {
        field: `${field}/name`,
        name: tool.name,
      });
    }
    seen.add(tool.name);
    if (deps.tools.get(tool.name)) {
      throw new AppError(
        'invalid_request',
        `client tool "${tool.name}" has the name of a server tool`,
        { field: `${field}/name`, name: tool.name },
      );
    }
    const compiled = compiler.compile(tool.parameters);
    if (typeof compiled === 'string') {
      throw new AppError(
        'invalid_request',
        `client tool "${tool.name}": parameters is not a valid JSON Schema: ${compiled}`,
        { field: `${field}/parameters`, name: tool.name },
      );
    }
    if (!isStorableValue(tool)) {
      throw new AppError(
        'invalid_request',
        `client tool "${tool.name}" must be text without NUL characters or unpaired surrogates`,
        { field, name: tool.name },
      );
    }
    return {
      name: tool.name,
      ...(tool.description === undefined ? {} : { description: tool.description }),
      parameters: tool.parameters,
    };
  });
}

const IDEMPOTENCY_KEY = new RegExp(IDEMPOTENCY_KEY_PATTERN);

/**
 * What makes two requests "the same" for one idempotency key: the normalised fields. The
 * multitask mode counts only when it is not `enqueue`, and `tools`, `clientTools` and `webhook`
 * only when the client gave them, so that keys stored before those fields existed still match their
 * requests. `tools` is
 * hashed as sent (not resolved): the same body is the same request even if a `<server>__*`
 * would resolve differently now.
 */
function requestHash(content: string, body: PostMessageBody, multitask: Multitask): string {
  const fields: unknown[] = [content, body.threadId ?? null, body.model ?? null];
  if (multitask !== 'enqueue') fields.push(multitask);
  if (body.tools != null) fields.push({ tools: body.tools });
  if (body.clientTools != null) fields.push({ clientTools: body.clientTools });
  if (body.webhook != null) fields.push({ webhook: body.webhook.url });
  return new Bun.CryptoHasher('sha256').update(JSON.stringify(fields)).digest('hex');
}

export function listModels(config: Config) {
  return { default: config.chat.defaultModel, allowed: config.chat.allowedModels };
}

export async function listMessages(
  db: Store,
  threadId: string,
  query: { limit?: number; before?: string },
) {
  const thread = await db.getThread(threadId);
  if (!thread) throw notFound('thread', threadId);
  let before: { seq: number; position: number } | undefined;
  if (query.before !== undefined) {
    const cursor = await db.getMessage(query.before);
    if (!cursor || cursor.threadId !== threadId) {
      throw new AppError('invalid_cursor', `"${query.before}" is not a message of this thread`);
    }
    // A run's messages share one slot: the place within it pages through a long run too.
    before = { seq: cursor.seq, position: cursor.position };
  }
  const page = await db.listThreadMessages(threadId, { limit: query.limit ?? 50, before });
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
