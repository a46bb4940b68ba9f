import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { Redis } from 'ioredis';
import { isTerminal, type StreamEntry } from '../../harness/event-reader';
import { type FakeLlm, startFakeLlm } from '../../harness/fake-llm';
import { waitForJobState, waitForValue } from '../../harness/wait';
import { startTestApp, type TestApp } from '../support/app';
import { redisTestsEnabled } from '../support/redis';
import { messageRolesOfRun, rowCounts } from '../support/rows';

/** 200 pieces, 50 ms apart: a reply that takes ten seconds to stream. */
const SLOW = {
  kind: 'stream' as const,
  chunks: Array.from({ length: 200 }, (_, i) => `${i} `),
  delayMs: 50,
};

const terminalsOf = (entries: StreamEntry[], runId: string) =>
  entries.filter((e) => e.runId === runId && isTerminal(e.type)).map((e) => e.type);

const cancel = (t: TestApp, runId: string, body?: unknown) =>
  t.request(`/api/chat/runs/${runId}/cancel`, {
    method: 'POST',
    ...(body === undefined
      ? {}
      : {
          headers: { 'content-type': 'application/json' },
          body: typeof body === 'string' ? body : JSON.stringify(body),
        }),
  });

describe.skipIf(!redisTestsEnabled())('cancel a run that has not started', () => {
  let t: TestApp;
  // No worker: runs stay queued until they are cancelled.
  beforeAll(async () => {
    t = await startTestApp({ worker: false });
  });
  afterAll(() => t.close());

  test('a queued run is cancelled at once: 202 cancelled, one event, attempts 0, no job left', async () => {
    const { body } = await t.post({ content: 'never mind' });
    await waitForValue(
      () => t.deps.queue.getJob(body.runId),
      (job) => job !== undefined,
    );
    const response = await cancel(t, body.runId, { reason: 'changed my mind' });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ runId: body.runId, status: 'cancelled' });

    const events = await t.events.waitForTerminal(body.runId);
    expect(events.map((e) => e.type)).toEqual(['agent.run.requested', 'agent.run.cancelled']);
    expect(events[1]?.payload).toEqual({ reason: 'changed my mind', by: 'client', attempts: 0 });
    const run = await t.get(`/api/chat/runs/${body.runId}`);
    expect(run.body).toMatchObject({
      status: 'cancelled',
      attempts: 0,
      reply: null,
      cancel: { reason: 'changed my mind', by: 'client', requestedAt: expect.any(String) },
      finishedAt: expect.any(String),
    });
    // Its job is taken out of the queue: it never runs.
    expect(await t.deps.queue.getJob(body.runId)).toBeUndefined();
    expect(await messageRolesOfRun(t.sql, body.runId)).toEqual(['user']);
  });

  test('cancelling again is safe: the same answer, no second event, the first reason stays', async () => {
    const { body } = await t.post({ content: 'twice' });
    expect((await cancel(t, body.runId, { reason: 'first' })).status).toBe(202);
    const again = await cancel(t, body.runId, { reason: 'second' });
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual({ runId: body.runId, status: 'cancelled' });
    // A marker run after it: once its event is on the stream, the cancel's would be too.
    const marker = await t.post({ content: 'marker' });
    await t.events.waitFor((all) => all.some((e) => e.runId === marker.body.runId));
    expect(terminalsOf(t.events.entries, body.runId)).toEqual(['agent.run.cancelled']);
    expect((await t.get(`/api/chat/runs/${body.runId}`)).body.cancel.reason).toBe('first');
  });

  test('cancelling a thread head starts the next run; cancelling one behind the head does not', async () => {
    const threadId = `cancel-chain-${Date.now()}`;
    const first = await t.post({ content: 'one', threadId });
    const second = await t.post({ content: 'two', threadId });
    const third = await t.post({ content: 'three', threadId });
    // Only the head has a job.
    expect(await t.deps.queue.getJob(second.body.runId)).toBeUndefined();
    // The second waits behind the first: cancelling it enqueues nothing.
    expect((await cancel(t, second.body.runId)).status).toBe(202);
    await t.events.waitForTerminal(second.body.runId);
    expect(await t.deps.queue.getJob(third.body.runId)).toBeUndefined();
    // The head cancelled: the next unfinished run, the third, gets its job.
    expect((await cancel(t, first.body.runId)).status).toBe(202);
    const job = await waitForValue(
      () => t.deps.queue.getJob(third.body.runId),
      (found) => found !== undefined,
    );
    expect(job?.data).toEqual({ runId: third.body.runId });
  });

  test('a cancel without a body, or with a null reason, is fine', async () => {
    const a = await t.post({ content: 'no body' });
    const b = await t.post({ content: 'null reason' });
    expect((await cancel(t, a.body.runId)).status).toBe(202);
    expect((await cancel(t, b.body.runId, { reason: null })).status).toBe(202);
    expect((await t.get(`/api/chat/runs/${a.body.runId}`)).body.cancel).toMatchObject({
      reason: null,
      by: 'client',
    });
  });

  test.each([
    ['an unknown run', 'run_doesnotexist0000000000000', undefined, 404, 'not_found'],
    ['a reason over 500 characters', null, { reason: 'x'.repeat(501) }, 400, 'invalid_request'],
    ['an unknown field', null, { reason: 'r', force: true }, 400, 'invalid_request'],
    ['a reason that is not text', null, { reason: 42 }, 400, 'invalid_request'],
    ['malformed JSON', null, '{"reason": ', 400, 'invalid_request'],
  ])('%s: %i, nothing changed', async (_name, runId, body, status, code) => {
    const posted = runId ? undefined : await t.post({ content: 'keep me' });
    const id = runId ?? posted?.body.runId;
    const before = await rowCounts(t.sql);
    const response = await cancel(t, id, body);
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
    expect(await rowCounts(t.sql)).toEqual(before);
    if (posted) {
      expect((await t.get(`/api/chat/runs/${id}`)).body).toMatchObject({
        status: 'queued',
        cancel: null,
      });
    }
  });

  test('cancellations are counted by who asked', async () => {
    const metrics = await t.request('/metrics', {
      headers: {
        authorization: `Basic ${btoa(`${t.config.admin.user}:${t.config.admin.password}`)}`,
      },
    });
    expect(await metrics.text()).toMatch(/agent_runs_cancelled_total\{by="client"\} [1-9]/);
  });
});

describe.skipIf(!redisTestsEnabled())('cancel a run that is running', () => {
  let llm: FakeLlm;
  let t: TestApp;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    t = await startTestApp({
      // A long backoff: a run that failed once sits in its retry's delay while it is cancelled.
      env: { OPENAI_BASE_URL: llm.url, RUN_BACKOFF_MS: '60000' },
    });
  });
  afterAll(async () => {
    await t.close();
    await llm.stop();
  });
  beforeEach(() => llm.reset());

  test('while the model streams: the call is aborted, no reply is stored, the job completes', async () => {
    llm.setDefault(SLOW);
    const { body } = await t.post({ content: 'stream slowly' });
    const [call] = await llm.waitForRequests(1);
    await waitForValue(
      () => call?.chunksSent ?? 0,
      (sent) => sent >= 3,
    );
    const response = await cancel(t, body.runId, { reason: 'stop' });
    const acceptedAt = Date.now();
    const sentAtCancel = call?.chunksSent ?? 0;
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ runId: body.runId, status: 'cancelling' });

    const events = await t.events.waitForTerminal(body.runId);
    expect(terminalsOf(events, body.runId)).toEqual(['agent.run.cancelled']);
    expect(events.at(-1)?.payload).toEqual({ reason: 'stop', by: 'client', attempts: 1 });
    // The fake saw the connection close, and stopped writing: its pieces after the 202 are
    // what 50 ms apart fit in the time the cancel took to reach the worker (a pub/sub message
    // and an abort: milliseconds; the bound allows five seconds of a loaded machine), far below
    // the 200 of the whole reply.
    const closedAt = await waitForValue(
      () => call?.closedAt,
      (at) => at !== undefined,
    );
    expect(closedAt).toBeDefined();
    console.log(
      `cancel: the model's connection closed ${(closedAt ?? 0) - acceptedAt} ms after the 202`,
    );
    expect((call?.chunksSent ?? 0) - sentAtCancel).toBeLessThan(100);
    expect(call?.chunksSent ?? 0).toBeLessThan(200);

    const run = await t.get(`/api/chat/runs/${body.runId}`);
    expect(run.body).toMatchObject({ status: 'cancelled', reply: null, attempts: 1 });
    expect(await messageRolesOfRun(t.sql, body.runId)).toEqual(['user']);
    expect(await waitForJobState(t.deps.queue, body.runId, 'completed')).toBe('completed');
    // The cancel is final: the model is not called again for it.
    expect(llm.requests).toHaveLength(1);
  });

  test('mid-way through a call that has not answered yet: aborted the same way', async () => {
    llm.setDefault({ kind: 'reply', delayMs: 20_000 });
    const { body } = await t.post({ content: 'think long' });
    const [call] = await llm.waitForRequests(1);
    expect((await cancel(t, body.runId)).status).toBe(202);
    const events = await t.events.waitForTerminal(body.runId);
    expect(terminalsOf(events, body.runId)).toEqual(['agent.run.cancelled']);
    expect(
      await waitForValue(
        () => call?.closedAt,
        (at) => at !== undefined,
      ),
    ).toBeDefined();
    expect((await t.get(`/api/chat/runs/${body.runId}`)).body.status).toBe('cancelled');
  });

  test('the thread moves on: the next message runs once the cancelled one has stopped', async () => {
    llm.setDefault(SLOW);
    const threadId = `cancel-next-${Date.now()}`;
    const first = await t.post({ content: 'first', threadId });
    await llm.waitForRequests(1);
    const second = await t.post({ content: 'second', threadId });
    llm.setDefault({ kind: 'reply' });
    expect((await cancel(t, first.body.runId)).status).toBe(202);
    const events = await t.events.waitForTerminal(second.body.runId);
    expect(terminalsOf(events, second.body.runId)).toEqual(['agent.run.completed']);
    const order = t.events.entries
      .filter((e) => e.threadId === threadId)
      .map((e) => `${e.runId === first.body.runId ? 'first' : 'second'}:${e.type.slice(10)}`);
    expect(order.indexOf('second:started')).toBeGreaterThan(order.indexOf('first:cancelled'));
    // The second run's prompt has the first message without a reply.
    const prompt = llm.requests.at(-1)?.body.messages.map((m: { content: string }) => m.content);
    expect(prompt).toEqual(['first', 'second']);
  });

  test('in a retry backoff: cancelled at once, and the delayed retry never runs', async () => {
    llm.enqueue({ kind: 'status', status: 503 });
    const { body } = await t.post({ content: 'flaky' });
    expect(await waitForJobState(t.deps.queue, body.runId, 'delayed')).toBe('delayed');
    const response = await cancel(t, body.runId);
    expect(await response.json()).toEqual({ runId: body.runId, status: 'cancelled' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)?.payload).toMatchObject({ by: 'client', attempts: 1 });
    expect(await t.deps.queue.getJob(body.runId)).toBeUndefined();
    expect((await t.get(`/api/chat/runs/${body.runId}`)).body).toMatchObject({
      status: 'cancelled',
      attempts: 1,
    });
    expect(llm.requests).toHaveLength(1);
  });

  test('a completed run cannot be cancelled: 409 run_finished, nothing changes', async () => {
    const { body } = await t.post({ content: 'quick' });
    await t.events.waitForTerminal(body.runId);
    const response = await cancel(t, body.runId);
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({
      error: { code: 'run_finished', details: { status: 'completed' } },
    });
    expect((await t.get(`/api/chat/runs/${body.runId}`)).body.status).toBe('completed');
  });

  test('a cancel racing the model’s last piece: always one terminal event, and GET run agrees', async () => {
    // Answers of 0 to 15 ms: cancels sent as each run starts land before, during and after the
    // answer and the run's finish.
    let n = 0;
    llm.setDefault(() => ({ kind: 'reply', delayMs: n++ % 16 }));
    const runs = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const { body } = await t.post({ content: `race ${i}` });
        await t.events.waitFor(
          (all) => all.some((e) => e.runId === body.runId && e.type === 'agent.run.started'),
          `the start of race ${i}`,
        );
        const response = await cancel(t, body.runId);
        return { runId: body.runId as string, status: response.status };
      }),
    );
    for (const run of runs) await t.events.waitForTerminal(run.runId);
    // A marker: once its events are in, a second terminal event of any race run would be too.
    const marker = await t.post({ content: 'marker' });
    await t.events.waitForTerminal(marker.body.runId);
    const outcomes = new Set<string>();
    for (const run of runs) {
      const terminals = terminalsOf(t.events.entries, run.runId);
      expect(terminals).toHaveLength(1);
      const view = (await t.get(`/api/chat/runs/${run.runId}`)).body;
      expect(terminals[0]).toBe(`agent.run.${view.status}`);
      // A 202 means cancelled; a 409 means it had completed first.
      expect(view.status).toBe(run.status === 202 ? 'cancelled' : 'completed');
      if (view.status === 'cancelled') expect(view.reply).toBeNull();
      outcomes.add(view.status);
    }
    console.log(`cancel race: outcomes ${[...outcomes].join(', ')}`);
  });
});

describe.skipIf(!redisTestsEnabled())('cancel through the stream', () => {
  let llm: FakeLlm;
  let t: TestApp;
  let producer: Redis;
  beforeAll(async () => {
    llm = await startFakeLlm({ quiet: true });
    llm.setDefault(SLOW);
    t = await startTestApp({ env: { OPENAI_BASE_URL: llm.url } });
    producer = new Redis(t.config.redis.url);
  });
  afterAll(async () => {
    producer.disconnect();
    await t.close();
    await llm.stop();
  });

  const command = (requestId: string, runId: string | undefined, payload?: unknown) =>
    producer.xadd(
      t.config.redis.streamKey,
      '*',
      'type',
      'agent.run.cancel_requested',
      'requestId',
      requestId,
      ...(runId ? ['runId', runId] : []),
      ...(payload === undefined ? [] : ['payload', JSON.stringify(payload)]),
    );
  const rejectionOf = (requestId: string) =>
    t.events.entries.find((e) => e.type === 'agent.run.rejected' && e.requestId === requestId);

  test('agent.run.cancel_requested cancels a running run like the HTTP route', async () => {
    const { body } = await t.post({ content: 'stop me from afar' });
    await llm.waitForRequests(1);
    await command('cancel-1', body.runId, { reason: 'from the stream' });
    const events = await t.events.waitForTerminal(body.runId);
    expect(events.at(-1)).toMatchObject({
      type: 'agent.run.cancelled',
      payload: { reason: 'from the stream', by: 'client', attempts: 1 },
    });
  });

  test('a cancel command for an unknown run, or without one, is rejected and changes nothing', async () => {
    await command('cancel-unknown', 'run_doesnotexist0000000000000');
    await command('cancel-no-run', undefined);
    await command('cancel-bad-reason', 'run_doesnotexist0000000000000', { reason: 7 });
    await t.events.waitFor(
      () => ['cancel-unknown', 'cancel-no-run', 'cancel-bad-reason'].every(rejectionOf),
      'the three rejections',
    );
    expect(rejectionOf('cancel-unknown')?.payload.error.code).toBe('not_found');
    expect(rejectionOf('cancel-no-run')?.payload.error.code).toBe('invalid_request');
    expect(rejectionOf('cancel-bad-reason')?.payload.error.code).toBe('invalid_request');
  });
});
