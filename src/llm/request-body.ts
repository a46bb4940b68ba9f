import type { ChatMessage, ChatRequest, ToolCall, ToolDefinition } from './llm';

/**
 * Our request in the words of OpenAI's chat completions API. Plain wire shapes, so the SDK stays
 * imported by `openai.ts` alone; the compiler checks them against the SDK's types where
 * `openai.ts` sends them.
 */
export interface RequestBody {
  model: string;
  messages: WireMessage[];
  tools?: WireTool[];
  tool_choice?: 'auto' | 'none';
  /**
   * `max_tokens`, not `max_completion_tokens`: the SDK (openai 7.57) takes both, and OpenAI has
   * deprecated `max_tokens` for the latter, but `max_tokens` is the one every OpenAI-compatible
   * server reads (vLLM, llama.cpp, Ollama, LM Studio), and OpenAI still honours it for its chat
   * models. OpenAI's reasoning models refuse it with a 400: a summary then fails and the run goes
   * on with the older messages verbatim (docs/architecture.md, "Memory").
   */
  max_tokens?: number;
}

type WireMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: WireToolCall[] }
  | { role: 'tool'; tool_call_id: string; content: string };

interface WireToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

interface WireTool {
  type: 'function';
  function: { name: string; description?: string; parameters: Record<string, unknown> };
}

/**
 * Without tools (or with an empty list) the body is only model and messages, as before tools
 * existed: OpenAI's API refuses `tools: []`, and a `tool_choice` without tools.
 */
export function toRequestBody(request: ChatRequest): RequestBody {
  const body: RequestBody = { model: request.model, messages: request.messages.map(toWireMessage) };
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
  if (request.tools && request.tools.length > 0) {
    body.tools = request.tools.map(toWireTool);
    if (request.toolChoice) body.tool_choice = request.toolChoice;
  }
  return body;
}

function toWireMessage(message: ChatMessage): WireMessage {
  switch (message.role) {
    case 'tool':
      return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
    case 'assistant': {
      const calls = message.toolCalls ?? [];
      if (calls.length === 0) return { role: 'assistant', content: message.content };
      // The API's content is optional beside tool calls: no text is sent as null, not as "".
      return {
        role: 'assistant',
        content: message.content === '' ? null : message.content,
        tool_calls: calls.map(toWireToolCall),
      };
    }
    default:
      return { role: message.role, content: message.content };
  }
}

function toWireToolCall(call: ToolCall): WireToolCall {
  return {
    id: call.id,
    type: 'function',
    function: { name: call.name, arguments: call.arguments },
  };
}

function toWireTool(tool: ToolDefinition): WireTool {
  const definition: WireTool['function'] = { name: tool.name, parameters: tool.parameters };
  if (tool.description !== undefined) definition.description = tool.description;
  return { type: 'function', function: definition };
}
