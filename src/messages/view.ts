import type { Message } from '../../db/types';
import type { MessageView } from './model';

export function toMessageView(message: Message): MessageView {
  return {
    id: message.id,
    threadId: message.threadId,
    runId: message.runId,
    role: message.role,
    content: message.content,
    createdAt: message.createdAt.toISOString(),
  };
}
