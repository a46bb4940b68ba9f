import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { spawn } from 'bun';
import { Redis } from 'ioredis';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForValue } from '../../harness/wait';
import { runStreamKey } from '../../src/events/stream-writer';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

const WATCH = join(import.meta.dir, '..', '..', 'tools', 'watch.ts');

/** `bun run watch` as a person runs it, against the real server; its output collected. */
function watch(id: string, baseUrl: string) {
  const proc = spawn(['bun', WATCH, id, '--url', baseUrl], { stdout: 'pipe', stderr: 'pipe' });
  let output = '';
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
  };
  const drained = Promise.all([
    read(proc.stdout as ReadableStream<Uint8Array>),
    read(proc.stderr as ReadableStream<Uint8Array>),
  ]);
  return {
    proc,
    output: () => output,
    /** Resolves with the exit code once the process has left and its output is read. */
    exited: async () => {
      const code = await proc.exited;
      await drained;
      return code;
    },
  };
}

describe.skipIf(!redisTestsEnabled())('bun run watch', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ listen: true, env: { OPENAI_BASE_URL: llm.url } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });

  test("a run whose stream expired: what the reset carried, then the feed's end", async () => {
    const { body } = await t.post({ content: 'watch me later' });
    await t.events.waitForTerminal(body.runId);
    // What RUN_FEED_TTL_S does after the terminal event.
    const redis = new Redis(t.config.redis.url);
    await redis.del(runStreamKey(t.deps.stream, body.runId));
    redis.disconnect();
    const watcher = watch(body.runId, t.baseUrl as string);
    expect(await watcher.exited()).toBe(0);
    expect(watcher.output().trimEnd().split('\n')).toEqual([
      `• agent.feed.reset: earlier events are gone; the run now: ${body.runId} completed, 1 attempt, reply "echo: watch me later"`,
      '(feed ended)',
    ]);
  });

  test("a thread: each run's events and its reply text", async () => {
    const threadId = `watch-thread-${Date.now()}`;
    const first = await t.post({ content: 'before watching', threadId });
    await t.events.waitForTerminal(first.body.runId);
    const watcher = watch(threadId, t.baseUrl as string);
    try {
      await waitForValue(
        () => t.deps.feeds.stats().subscribers,
        (subscribers) => subscribers > 0,
      );
      const { body } = await t.post({ content: 'hello thread', threadId });
      const output = await waitForValue(watcher.output, (text) => text.includes('  memory: '));
      expect(output.trimEnd().split('\n')).toEqual([
        `• agent.run.requested ${body.runId} "hello thread" (gpt-4o-mini)`,
        `• agent.run.started ${body.runId} attempt 1`,
        expect.stringMatching(new RegExp(`^• agent\\.run\\.completed ${body.runId} 1 attempt, `)),
        '  reply: echo: hello thread',
        // The budget report: the thread's three messages, nothing summarised yet.
        expect.stringMatching(/^ {2}memory: \d+ of 128000 tokens sent — 3 messages /),
      ]);
    } finally {
      watcher.proc.kill();
      await watcher.exited();
    }
  });
});
