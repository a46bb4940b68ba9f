/**
 * The run job's story, where Bull Board shows it: one line of the job's log per attempt, model
 * call, tool call and ending, and the job's progress (step, tool calls, streamed tokens). Lines
 * and progress are gathered and written together, at most once per PROGRESS_MS while the
 * attempt runs and once at its end, the writes of one turn of the event loop in one Redis round trip
 * (`jobStoryWriter`): a run that answers within a second writes its whole story at once. Writes are never awaited on the
 * run's path and never throw: a Redis that does not take them loses lines, never the run.
 */
import type { Job } from 'bullmq';
import type { MemoryReport, RunUsage } from '../db/types';
import { LlmError } from '../src/llm/llm';
import type { Logger } from '../src/logger';
import { queuePipeline, type RunJobData, type RunQueue } from './catalog';

/** Lines and progress are written at most once per this many ms while an attempt runs. */
const PROGRESS_MS = 1000;
/** How long the end of an attempt waits for its lines to land (BullMQ's own finish needs Redis too). */
const SETTLE_MS = 1000;
/** The longest piece of a tool's error or an error message that a line quotes. */
const QUOTE_CHARS = 200;

/** The job's progress, as Bull Board shows it. */
export interface RunProgress {
  attempt: number;
  /** The model call under way or last made (a run's steps count across its attempts). */
  step: number;
  maxSteps: number;
  /** Tool results the run has so far. */
  toolCalls: number;
  /**
   * The pieces of reply text streamed in this attempt: an OpenAI-compatible server streams about
   * one token a piece. Counted, not tokenized, to keep the hot path cheap.
   */
  streamedTokens: number;
}

/** What the agent loop tells the report as it goes (jobs/agent-loop.ts). */
export interface LoopReport {
  stepStarted(step: number): void;
  modelAnswered(call: {
    step: number;
    durationMs: number;
    memory: MemoryReport;
    usage: RunUsage;
    toolCalls: string[];
    replyChars: number;
    /** The retry with half the window, after the model refused the prompt as too long. */
    shrunk: boolean;
  }): void;
  modelFailed(call: {
    step: number;
    durationMs: number;
    error: unknown;
    cancelled: boolean;
    /** The refusal of a prompt as too long: the call is made again with half the window. */
    retrying: boolean;
  }): void;
  toolFinished(call: {
    step: number;
    name: string;
    source: string;
    isError: boolean;
    output: string;
    durationMs: number;
    /** The run's tool results so far, this one included. */
    toolCalls: number;
  }): void;
}

export interface RunReport extends LoopReport {
  /** One line of the job's log. */
  line(text: string): void;
  attemptStarted(attempt: number, model: string, resumed: boolean): void;
  completed(end: {
    replyId: string;
    replyChars: number;
    steps: number;
    toolCallCount: number;
    usage: RunUsage;
  }): void;
  /** A piece of the reply streamed. */
  streamed(): void;
  /** Writes what is left of the story and waits (at most SETTLE_MS) for every write to land. */
  close(): Promise<void>;
}

/** Where a report's story goes: lines in order, then the progress if given. */
export interface StoryWriter {
  write(lines: string[], progress: RunProgress | undefined): Promise<unknown>;
}

/** Through the job's own calls: a command a line. */
export function jobCallsWriter(job: Pick<Job, 'log' | 'updateProgress'>): StoryWriter {
  return {
    write: (lines, progress) =>
      Promise.all([
        ...lines.map((text) => job.log(text)),
        ...(progress ? [job.updateProgress(progress)] : []),
      ]),
  };
}

/**
 * BullMQ's own scripts, the ones `job.log` (`addLog`, bounded by the job's `keepLogs`) and
 * `job.updateProgress` run, queued on one pipeline of the queue's connection for every story
 * written in one turn of the event loop: one round trip for the runs that end together, instead
 * of a command a line. (A pipeline on that connection is not free: ioredis copies BullMQ's
 * scripts onto each one, so one a turn rather than one a run.)
 */
export function jobStoryWriter(queue: RunQueue, job: Job<RunJobData>): StoryWriter {
  return {
    write(lines, progress) {
      if (progress) job.progress = progress;
      return storyBatch(queue)({ job, lines, progress });
    },
  };
}

type Story = { job: Job<RunJobData>; lines: string[]; progress: RunProgress | undefined };
const batches = new WeakMap<RunQueue, (story: Story) => Promise<void>>();

function storyBatch(queue: RunQueue): (story: Story) => Promise<void> {
  let batch = batches.get(queue);
  if (batch) return batch;
  let waiting: { story: Story; done: (error?: unknown) => void }[] = [];
  const flush = async () => {
    const stories = waiting;
    waiting = [];
    try {
      const { backend } = queue;
      const pipeline = await queuePipeline(queue);
      const counts = stories.map(({ story: { job, lines, progress } }) => {
        const id = job.id as string;
        const jobKey = backend.toKey(id);
        for (const text of lines) {
          backend.execCommand(pipeline as never, 'addLog', [
            jobKey,
            `${jobKey}:logs`,
            id,
            text,
            job.opts.keepLogs ?? '',
          ]);
        }
        if (progress) {
          backend.execCommand(pipeline as never, 'updateProgress', [
            jobKey,
            backend.keys.events,
            backend.keys.meta,
            id,
            JSON.stringify(progress),
          ]);
        }
        return lines.length + (progress ? 1 : 0);
      });
      const results = (await pipeline.exec()) ?? [];
      let at = 0;
      stories.forEach(({ story, done }, i) => {
        const mine = results.slice(at, at + (counts[i] as number));
        at += counts[i] as number;
        const error = mine.find(([error]) => error)?.[0];
        const code = mine.find(([, result]) => typeof result === 'number' && result < 0)?.[1];
        done(
          error ??
            (code === undefined
              ? undefined
              : new Error(`job ${story.job.id}: its story was not written (code ${code})`)),
        );
      });
    } catch (error) {
      for (const { done } of stories) done(error);
    }
  };
  batch = (story) =>
    new Promise<void>((resolve, reject) => {
      if (waiting.length === 0) setImmediate(flush);
      waiting.push({ story, done: (error) => (error ? reject(error) : resolve()) });
    });
  batches.set(queue, batch);
  return batch;
}

export function createRunReport(
  writer: StoryWriter,
  opts: { maxSteps: number; logger: Logger },
): RunReport {
  const state: RunProgress = {
    attempt: 0,
    step: 0,
    maxSteps: opts.maxSteps,
    toolCalls: 0,
    streamedTokens: 0,
  };
  let model = '';
  const pending = new Set<Promise<unknown>>();
  let lost = false;
  const track = (write: Promise<unknown>) => {
    const settled = write.then(
      () => {},
      (error) => {
        // Once an attempt: the board misses lines, the run goes on.
        if (!lost) opts.logger.debug({ err: error }, 'could not write to the job’s log');
        lost = true;
      },
    );
    pending.add(settled);
    void settled.then(() => pending.delete(settled));
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  let dirty = false;
  let lines: string[] = [];
  const writeStory = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!dirty && lines.length === 0) return;
    const progress = dirty ? { ...state } : undefined;
    dirty = false;
    track(writer.write(lines, progress));
    lines = [];
  };
  const schedule = () => {
    timer ??= setTimeout(writeStory, PROGRESS_MS);
  };
  const progressed = () => {
    dirty = true;
    schedule();
  };
  const line = (text: string) => {
    lines.push(text);
    schedule();
  };

  return {
    line,
    attemptStarted(attempt, runModel, resumed) {
      model = runModel;
      state.attempt = attempt;
      progressed();
      line(`attempt ${attempt}${resumed ? ', resumed: the client answered' : ''} · model ${model}`);
    },
    stepStarted(step) {
      state.step = step;
      progressed();
    },
    streamed() {
      state.streamedTokens++;
      progressed();
    },
    modelAnswered(call) {
      const { memory, usage } = call;
      const answer =
        call.toolCalls.length > 0
          ? `${count(call.toolCalls.length, 'tool call')} (${call.toolCalls.join(', ')})`
          : `a reply of ${count(call.replyChars, 'char')}`;
      const prompt =
        usage.promptTokens > 0
          ? `${usage.promptTokens}`
          : `≈${memory.systemTokens + memory.summaryTokens + memory.toolsTokens + memory.windowTokens}`;
      line(
        `step ${call.step} · ${model} answered in ${duration(call.durationMs)}: ${answer} · ` +
          `prompt ${prompt} tokens of a ${memory.contextTokens}-token context${call.shrunk ? ', window halved' : ''}: ` +
          `window ${count(memory.windowMessages, 'message')} (${memory.windowTokens} tokens), ` +
          `summary ${memory.summaryTokens} tokens over ${count(memory.summarisedMessages, 'message')}, ` +
          `system ${memory.systemTokens}, tools ${memory.toolsTokens} · ` +
          `completion ${usage.completionTokens} tokens`,
      );
    },
    modelFailed(call) {
      const after = `after ${duration(call.durationMs)}`;
      if (call.cancelled) {
        line(`step ${call.step} · ${model} call stopped by a cancel ${after}`);
        return;
      }
      line(
        `step ${call.step} · ${model} failed ${after}: ${describeError(call.error)}` +
          (call.retrying ? '; trying again with half the window' : ''),
      );
    },
    toolFinished(call) {
      state.toolCalls = call.toolCalls;
      progressed();
      const how = call.isError
        ? `failed in ${duration(call.durationMs)}: ${quote(call.output)}`
        : `answered in ${duration(call.durationMs)}`;
      line(`step ${call.step} · tool ${call.name} (${call.source}) ${how}`);
    },
    completed(end) {
      line(
        `completed · reply ${end.replyId} (${count(end.replyChars, 'char')}) · ` +
          `${count(end.steps, 'step')}, ${count(end.toolCallCount, 'tool call')} · ` +
          `${end.usage.promptTokens} prompt + ${end.usage.completionTokens} completion tokens`,
      );
    },
    async close() {
      writeStory();
      if (pending.size === 0) return;
      let timeout: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(pending),
        new Promise((resolve) => {
          timeout = setTimeout(resolve, SETTLE_MS);
        }),
      ]);
      clearTimeout(timeout);
    },
  };
}

/** A failure as a line says it: the run-failure code first, as the run and its event have it. */
export function describeFailure(failure: { code: string; message: string }): string {
  return `${failure.code}: ${quote(failure.message)}`;
}

/** An error as a line says it: a model's by its run-failure code, any other by its name. */
function describeError(error: unknown): string {
  if (error instanceof LlmError) return describeFailure(error);
  if (error instanceof Error) return `${error.name}: ${quote(error.message)}`;
  return quote(String(error));
}

/**
 * The first `max` characters of `text`, cut before a surrogate pair rather than through it: the
 * reply's preview in the job's return value, and quotes in log lines.
 */
export function previewText(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = /[\uD800-\uDBFF]/.test(text[max - 1] ?? '') ? max - 1 : max;
  return `${text.slice(0, cut)}…`;
}

/** On one line, cut short. */
const quote = (text: string) =>
  previewText(
    text
      .slice(0, 2 * QUOTE_CHARS)
      .replace(/\s+/g, ' ')
      .trim(),
    QUOTE_CHARS,
  );

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

const duration = (ms: number) =>
  ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
