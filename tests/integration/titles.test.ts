import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type FakeLlm, type RecordedRequest, startFakeLlm } from '../../harness/fake-llm';
import { waitForJobState } from '../../harness/wait';
import { buildEvent } from '../../src/events/event';
import { compareIds } from '../../src/feeds/feed-reader';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';

/** The title model's answer: quoted, with a period, as models like to write them. */
const ANSWER = '"Planning a trip to Kyoto."';
const TITLE = 'Planning a trip to Kyoto';

let counter = 0;
const newThreadId = () => `titles-${Date.now().toString(36)}-${counter++}`;

/** The title calls about one thread: the first user message (`marker` in it) is in the prompt. */
const titleCalls = (llm: FakeLlm, marker: string) =>
  llm.requests.filter(
    (r: RecordedRequest) =>
      r.body.model === 'title-model' && JSON.stringify(r.body.messages).includes(marker),
  );

/** The run's job is over: titleThread ran (the job awaits it after the terminal event). */
async function jobDone(t: TestApp, runId: string) {
  expect(await waitForJobState(t.deps.queue, runId, 'completed')).toBe('completed');
}

/** Posts a message and waits until its run completed and its job is over. */
async function completeRun(t: TestApp, threadId: string, content: string) {
  const { status, body } = await t.post({ content, threadId });
  expect(status).toBe(202);
  const events = await t.events.waitForTerminal(body.runId);
  expect(events.at(-1)?.type).toBe('agent.run.completed');
  await jobDone(t, body.runId);
  return body.runId as string;
}

const titledEvents = (t: TestApp, threadId: string) =>
  t.events.entries.filter((e) => e.type === 'agent.thread.titled' && e.threadId === threadId);

describe.skipIf(!redisTestsEnabled())('thread titles (CHAT_TITLE_MODEL)', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    llm.setDefault((req) =>
      req.body.model === 'title-model'
        ? { kind: 'reply', content: ANSWER }
        : { kind: 'reply', content: `answer to ${req.body.messages.at(-1).content}` },
    );
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url, CHAT_TITLE_MODEL: 'title-model' } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });

  test('titled once, after the first completed run; not again after the second', async () => {
    const threadId = newThreadId();
    const marker = `kyoto ${threadId}`;
    const first = await completeRun(t, threadId, `help me plan ${marker}`);
    await t.events.waitFor(() => titledEvents(t, threadId).length > 0, 'agent.thread.titled');
    expect(titledEvents(t, threadId)).toHaveLength(1);
    const event = titledEvents(t, threadId)[0];
    expect(event).toMatchObject({ runId: first, payload: { title: TITLE } });
    // After the run's terminal event on the stream.
    const completed = t.events.forRun(first).find((e) => e.type === 'agent.run.completed');
    expect(compareIds(completed?.id ?? '', event?.id ?? '')).toBeLessThan(0);

    const calls = titleCalls(llm, marker);
    expect(calls).toHaveLength(1);
    const body = calls[0]?.body;
    expect(body.tools).toBeUndefined();
    expect(body.stream).toBeFalsy();
    expect(body.messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user']);
    expect(body.messages[1].content).toContain(`help me plan ${marker}`);
    expect(body.messages[1].content).toContain(`answer to help me plan ${marker}`);

    const { body: thread } = await t.get(`/api/chat/threads/${threadId}`);
    expect(thread.title).toBe(TITLE);

    await completeRun(t, threadId, 'and the week after?');
    expect(titleCalls(llm, marker)).toHaveLength(1);
    expect(titledEvents(t, threadId)).toHaveLength(1);
    expect((await t.get(`/api/chat/threads/${threadId}`)).body.title).toBe(TITLE);
  });

  test('a failed title call leaves no title; the next completed run makes it', async () => {
    const threadId = newThreadId();
    const marker = `failing ${threadId}`;
    // The run's call first, then its title call: the title call gets the 500.
    llm.enqueue({ kind: 'reply', content: 'first answer' }, { kind: 'status', status: 500 });
    await completeRun(t, threadId, `first ${marker}`);
    expect(titleCalls(llm, marker)).toHaveLength(1);
    expect((await t.get(`/api/chat/threads/${threadId}`)).body.title).toBeNull();
    expect(titledEvents(t, threadId)).toHaveLength(0);

    const second = await completeRun(t, threadId, 'second message');
    await t.events.waitFor(() => titledEvents(t, threadId).length > 0, 'agent.thread.titled');
    expect(titledEvents(t, threadId)).toEqual([
      expect.objectContaining({ runId: second, payload: { title: TITLE } }),
    ]);
    // Named from the thread's first user message, not the second run's.
    expect(titleCalls(llm, marker)).toHaveLength(2);
    expect((await t.get(`/api/chat/threads/${threadId}`)).body.title).toBe(TITLE);
  });

  test("a user's title is never overwritten", async () => {
    const threadId = newThreadId();
    const marker = `user-titled ${threadId}`;
    // The run answers slowly, so the user's title is in before it completes.
    llm.enqueue({ kind: 'reply', content: 'slow answer', delayMs: 300 });
    const { body } = await t.post({ content: `hello ${marker}`, threadId });
    const now = new Date();
    const saved = await t.deps.db.saveTitle({
      threadId,
      title: 'My own title',
      source: 'user',
      now,
      event: buildEvent(
        'agent.thread.titled',
        { runId: body.runId, threadId },
        { title: 'My own title' },
        now,
      ),
    });
    expect(saved).not.toBeNull();
    await t.events.waitForTerminal(body.runId);
    await jobDone(t, body.runId);
    expect(titleCalls(llm, marker)).toHaveLength(0);
    expect((await t.get(`/api/chat/threads/${threadId}`)).body.title).toBe('My own title');

    // A model title saved over it is refused by the store, whatever the caller.
    const model = await t.deps.db.saveTitle({
      threadId,
      title: 'A model title',
      source: 'model',
      now: new Date(),
      event: buildEvent(
        'agent.thread.titled',
        { runId: body.runId, threadId },
        { title: 'A model title' },
      ),
    });
    expect(model).toBeNull();
    expect((await t.get(`/api/chat/threads/${threadId}`)).body.title).toBe('My own title');
  });
});

describe.skipIf(!redisTestsEnabled())('thread titles off (CHAT_TITLE_MODEL empty)', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url, CHAT_TITLE_MODEL: '' } });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });

  test('no title call at all, no title', async () => {
    const threadId = newThreadId();
    await completeRun(t, threadId, 'no titles here');
    await completeRun(t, threadId, 'still none');
    expect(llm.requests).toHaveLength(2);
    expect(titledEvents(t, threadId)).toHaveLength(0);
    expect((await t.get(`/api/chat/threads/${threadId}`)).body.title).toBeNull();
  });
});
