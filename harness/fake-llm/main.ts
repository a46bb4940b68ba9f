import { parseArgs } from 'node:util';
import { startFakeLlm } from './server';

// `bun run fake-llm [--port 4010] [--delay-ms 0] [--context-tokens 8192]`: the test suite's
// model server, on its own, so anyone can see a message answered end to end without an API key.
// With --context-tokens it refuses a longer prompt as OpenAI does (context_length_exceeded).
const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'delay-ms': { type: 'string' },
    'context-tokens': { type: 'string' },
  },
});
const port = Number(values.port ?? process.env.FAKE_LLM_PORT ?? 4010);
const delayMs = Number(values['delay-ms'] ?? 0);
const rawContext = values['context-tokens'];
const contextTokens = rawContext === undefined ? undefined : Number(rawContext);
if (contextTokens !== undefined && !(Number.isInteger(contextTokens) && contextTokens > 0)) {
  console.error(`--context-tokens: expected a positive whole number, got "${rawContext}"`);
  process.exit(2);
}

const fake = await startFakeLlm({ port, delayMs, contextTokens });
if (contextTokens !== undefined) {
  console.log(`context window: ${contextTokens} tokens (a longer prompt is refused)`);
}
console.log(`fake LLM listening: OPENAI_BASE_URL=${fake.url}`);
console.log('it answers "echo: <your last message>"; Ctrl-C stops it');
console.log(
  'with tools offered, "[[tool:NAME {json arguments}]]" in a message makes it call NAME; tool results are echoed',
);

const stop = async () => {
  await fake.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
