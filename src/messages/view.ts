import type { Message } from '../../db/types';
import type { MessageView } from './model';

/**
 * The tool fields by role, and only when set: `toolCalls` on an assistant message that called
 * tools, `toolCallId`, `name`, `isError` on a tool result. A user message or a reply looks as
 * it did before tools existed, whatever a store writes in the other columns.
 */
export function toMessageView(message: Message): MessageView {
  const view: MessageView = {
    id: message.id,
    threadId: message.threadId,
    runId: message.runId,
    role: message.role,
    content: message.content,
    createdAt: message.createdAt.toISOString(),
  };
  if (message.role === 'assistant' && message.toolCalls && message.toolCalls.length > 0) {
    view.toolCalls = message.toolCalls.map((call) => ({
      toolCallId: call.toolCallId,
      name: call.name,
      arguments: call.arguments,
    }));
  }
  if (message.role === 'tool') {
    if (message.toolCallId != null) view.toolCallId = message.toolCallId;
    if (message.name != null) view.name = message.name;
    if (message.isError != null) view.isError = message.isError;
  }
  return view;
}
