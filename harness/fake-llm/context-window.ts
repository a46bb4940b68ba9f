import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/**
 * The fake's context window. A prompt is counted as our memory counts it (o200k via
 * gpt-tokenizer): each message's content plus 4 tokens of framing, each tool call's name and
 * arguments plus 4, and the `tools` JSON as sent. Over the window, the request is refused as the
 * named server refuses it: its status and its body, word for word as their issue trackers show
 * them (src/llm/openai.ts cites them). The completion's `max_tokens` is not counted: OpenAI,
 * llama.cpp and Ollama refuse on the prompt alone (vLLM adds it; the fake does not).
 */
export type OverflowWording = 'openai' | 'vllm' | 'llamacpp' | 'ollama' | 'lmstudio';

const FRAMING = 4;
const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

const tokensOf = (text: unknown): number =>
  typeof text === 'string' && text.length > 0 ? countTokens(text, PLAIN_TEXT) : 0;

/** A chat request body's prompt tokens (0 for a body that is not one). */
// biome-ignore lint/suspicious/noExplicitAny: the request body as sent
export function promptTokens(body: any): number {
  if (typeof body !== 'object' || body === null) return 0;
  let tokens = 0;
  for (const message of Array.isArray(body.messages) ? body.messages : []) {
    tokens += FRAMING + tokensOf(message?.content);
    for (const call of Array.isArray(message?.tool_calls) ? message.tool_calls : []) {
      tokens += FRAMING + tokensOf(call?.function?.name) + tokensOf(call?.function?.arguments);
    }
  }
  if (Array.isArray(body.tools) && body.tools.length > 0) {
    tokens += tokensOf(JSON.stringify(body.tools));
  }
  return tokens;
}

/** The refusal of a prompt of `prompt` tokens by a server whose window is `context` tokens. */
export function overflowResponse(
  wording: OverflowWording,
  counts: { prompt: number; context: number; maxTokens?: number },
): Response {
  const { prompt, context } = counts;
  switch (wording) {
    case 'openai':
      return Response.json(
        {
          error: {
            message: `This model's maximum context length is ${context} tokens. However, your messages resulted in ${prompt} tokens. Please reduce the length of the messages.`,
            type: 'invalid_request_error',
            param: 'messages',
            code: 'context_length_exceeded',
          },
        },
        { status: 400 },
      );
    case 'vllm': {
      const completion = counts.maxTokens ?? 0;
      return Response.json(
        {
          error: {
            message: `This model's maximum context length is ${context} tokens. However, you requested ${prompt + completion} tokens (${prompt} in the messages, ${completion} in the completion). Please reduce the length of the messages or completion.`,
            type: 'BadRequestError',
            param: null,
            code: 400,
          },
        },
        { status: 400 },
      );
    }
    case 'llamacpp':
      return Response.json(
        {
          error: {
            code: 400,
            message: 'the request exceeds the available context size, try increasing it',
            type: 'exceed_context_size_error',
            n_prompt_tokens: prompt,
            n_ctx: context,
          },
        },
        { status: 400 },
      );
    case 'ollama':
      // Its OpenAI-compatible layer wraps the runner's error (with `truncate: false`).
      return Response.json(
        {
          error: {
            message: 'the input length exceeds the context length',
            type: 'invalid_request_error',
            param: null,
            code: null,
          },
        },
        { status: 400 },
      );
    case 'lmstudio':
      // LM Studio's error is a bare string.
      return Response.json(
        {
          error: `The number of tokens to keep from the initial prompt is greater than the context length (n_keep: ${prompt}>= n_ctx: ${context}). Try to load the model with a larger context length, or provide a shorter input.`,
        },
        { status: 400 },
      );
  }
}
