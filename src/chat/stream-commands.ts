import type { StreamCommands } from '../events/stream-consumer';
import { acceptMessage, type ChatDeps, parseMessageBody } from './service';

/**
 * The commands chat carries out for producers on the stream: `agent.run.requested` is the same
 * ingress as POST /api/chat/messages, validated by the same schema, the requestId its
 * idempotency key.
 */
export function chatStreamCommands(deps: ChatDeps): StreamCommands {
  return {
    'agent.run.requested': ({ requestId, payload }) =>
      acceptMessage(deps, parseMessageBody(payload), { requestId }),
  };
}
