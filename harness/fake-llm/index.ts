/**
 * A small OpenAI-compatible model server: the only fake in the test suite. The real `openai`
 * SDK talks to it over HTTP, and each test tells it how to answer: reply, stream, stall, fail
 * with any status, rate-limit, or send garbage.
 *
 * behaviours.ts chooses what to do with a request, responses.ts shapes OpenAI's bodies and
 * stream, server.ts serves them over HTTP, main.ts is `bun run fake-llm`.
 */
export type { ChaosOptions, FakeBehaviour, RecordedRequest } from './behaviours';
export { type FakeLlm, startFakeLlm } from './server';
