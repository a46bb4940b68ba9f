/**
 * A small OpenAI-compatible model server: the only fake in the test suite. The real `openai`
 * SDK talks to it over HTTP, and each test tells it how to answer: reply, stream, call tools
 * (several at once, their arguments streamed in interleaved pieces), stall, fail with any
 * status, rate-limit, or send garbage; with a context window (`startFakeLlm({contextTokens})`,
 * `setContextWindow`) it refuses a longer prompt as OpenAI, vLLM, llama.cpp, Ollama or LM Studio
 * refuse one, and it records each request's prompt tokens as our memory counts them.
 *
 * Left to its default it echoes: `echo: <the last user message>`; a user message holding
 * `[[tool:NAME {json arguments}]]` makes it call that tool (one directive a call, several:
 * parallel calls) when the request offers tools; and a request ending with tool results is
 * answered `echo: <name> said <result>; …`. directives.ts has the details.
 *
 * behaviours.ts chooses what to do with a request, directives.ts reads the echo's conventions,
 * context-window.ts counts a prompt and words the refusals,
 * responses.ts shapes OpenAI's bodies and stream (tool-calls.ts: its tool-call pieces),
 * server.ts serves them over HTTP, main.ts is `bun run fake-llm`.
 */
export type { ChaosOptions, FakeBehaviour, FakeToolCall, RecordedRequest } from './behaviours';
export { type OverflowWording, promptTokens } from './context-window';
export { type FakeLlm, startFakeLlm } from './server';
