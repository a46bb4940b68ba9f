import type { Message } from '../../db/types';
import type { MessageView } from './model';

/** The tool fields only when the message has them (a tool-call step, a tool result). */
export function toMessageView(message: Message): MessageView {
  return {
    id: message.id,
    threadId: message.threadId,
    runId: message.runId,
    role: message.role,
    content: message.content,
    ...(message.toolCalls
      ? {
          toolCalls: message.toolCalls.map((call) => ({
            toolCallId: call.toolCallId,
            name: call.name,
            arguments: call.arguments,
          })),
        }
      : {}),
    ...(message.toolCallId != null ? { toolCallId: message.toolCallId } : {}),
    ...(message.name != null ? { name: message.name } : {}),
    ...(message.isError != null ? { isError: message.isError } : {}),
    createdAt: message.createdAt.toISOString(),
  };
}
