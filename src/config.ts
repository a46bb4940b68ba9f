/**
 * The only reader of the environment. `loadConfig` parses every variable once into one typed
 * object; a bad value throws a `ConfigError` naming each offending variable, and `main.ts` turns
 * that into a clean exit. `.env.example` lists every variable with its default (a unit test keeps
 * the two in step); docs/operations.md explains each. One file on purpose, past 250 lines: every
 * variable and its rule in one place is what makes it the only reader.
 */
import { MULTITASK, type Multitask } from '../db/store';
import { EVENT_TYPES, type EventType } from './events/event';
import { redactUrl } from './redact';
import { clusterKeys, hashTagOf } from './redis/cluster-keys';
import type { ToolsFile } from './tools/model';
import { readToolsFile } from './tools/tools-file';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Config {
  /** HTTP port. Default 3000. */
  port: number;
  /**
   * `file:./db/sqlite.db` by default; a `file:` URL or a plain path selects SQLite,
   * `postgres://…` PostgreSQL.
   */
  databaseUrl: string;
  /** PostgreSQL connections per process (SQLite has one). */
  databasePoolSize: number;
  redis: {
    /**
     * Default `redis://localhost:6379`. With `clusterNodes` only its credentials and TLS
     * (`rediss:`) are used, for every node.
     */
    url: string;
    /**
     * REDIS_CLUSTER_NODES: the seed nodes of a Redis Cluster. Null (the default): one Redis at
     * `url`. When set, `streamKey` and `queuePrefix` carry one hash tag (`clusterKeys`).
     */
    clusterNodes: RedisNode[] | null;
    /** Main event stream. Default `agent_events`; `{agent_events}` with `clusterNodes`. */
    streamKey: string;
    /** Approximate MAXLEN of the stream. Default 100000. */
    streamMaxLen: number;
    consumerGroup: string;
    /** Default `worker-<pid>`; also the BullMQ worker's name. */
    consumerName: string;
    /**
     * Prefix of BullMQ's keys. `bull` in production (`{agent_events}:bull` with `clusterNodes`);
     * tests pass their own (`ConfigOverrides`).
     */
    queuePrefix: string;
  };
  stream: { claimIdleMs: number; maxDeliveries: number; runFeedTtlS: number };
  openai: {
    /** Undefined when neither a key nor a base URL is set: runs fail with `llm_not_configured`. */
    apiKey: string | undefined;
    baseUrl: string | undefined;
  };
  chat: {
    /** Null when any model id is accepted. */
    allowedModels: string[] | null;
    defaultModel: string;
    /** Null: summarise with the run's own model. */
    summaryModel: string | null;
    recentMessages: number;
    systemPrompt: string | null;
    maxMessageChars: number;
    /** What a new message does to its thread's unfinished runs by default. Default `enqueue`. */
    multitask: Multitask;
    /** CHAT_CONTEXT_TOKENS: a model's context window, unless named below. Default 128000. */
    contextTokens: number;
    /** CHAT_MODEL_CONTEXT_TOKENS (`model=tokens,…`): context windows by model id. */
    modelContextTokens: Record<string, number>;
    /** CHAT_MAX_OUTPUT_TOKENS: kept free for the answer. Default 4096. */
    maxOutputTokens: number;
    /** CHAT_SUMMARY_MAX_TOKENS: the summary's cap. Default 1024. */
    summaryMaxTokens: number;
    /** CHAT_TITLE_MODEL: titles a thread after its first completed run; null: no titles. */
    titleModel: string | null;
  };
  run: {
    attempts: number;
    backoffMs: number;
    llmTimeoutMs: number;
    workerConcurrency: number;
    staleMs: number;
    /** BullMQ job lock; renewed every half of it while a run is in flight. */
    lockMs: number;
    /** How often workers look for jobs whose lock expired (a crashed worker's runs). */
    stalledCheckMs: number;
    /** Model calls a run may make; the last one is offered no tools. Default 10. */
    maxSteps: number;
    /** A run waiting in `requires_action` this long fails `action_timeout`. Default 3600000. */
    actionTimeoutMs: number;
  };
  tools: {
    /** TOOLS_FILE: the operator's server tools (HTTP tools, MCP servers). Null: none. */
    file: string | null;
    /** What the file configures, `${VAR}`s filled in; both empty without a file. */
    servers: ToolsFile;
    /** CHAT_DEFAULT_TOOLS: the tools of a message that names none. Default none. */
    defaultTools: string[];
    /** Server tool calls of one step run at once, at most this many. Default 4. */
    concurrency: number;
    /** A tool result is cut to this many characters. Default 20000. */
    maxOutputChars: number;
  };
  threads: {
    /**
     * THREAD_RETENTION_DAYS: threads not updated for this many days are deleted by the
     * retention sweeper (src/threads/retention.ts). Null (the default, empty): kept forever.
     */
    retentionDays: number | null;
  };
  /** Webhooks (src/webhooks): who is sent which events, signed how, retried how often. */
  webhooks: {
    /** WEBHOOK_URL: every event of `events` goes there. Null: none. */
    url: string | null;
    /** WEBHOOK_SECRET (`whsec_…`): signs every delivery; set whenever webhooks can be sent. */
    secret: string | null;
    /** WEBHOOK_EVENTS: the event types sent. */
    events: EventType[];
    /** WEBHOOK_ALLOWED_URLS: prefixes a message's own `webhook.url` must match; empty: refused. */
    allowedUrls: string[];
    /** WEBHOOK_MAX_ATTEMPTS: a delivery fails after this many. Default 12. */
    maxAttempts: number;
    /** WEBHOOK_RETRY_SCHEDULE_MS: the delay after each failed attempt; the last repeats. */
    retryScheduleMs: number[];
  };
  http: { maxBodyBytes: number; corsOrigins: string[] };
  apiKeys: string[];
  admin: { user: string; password: string; passwordGenerated: boolean };
  logLevel: LogLevel;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export interface RedisNode {
  host: string;
  port: number;
}

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** Settings no environment variable sets. */
export interface ConfigOverrides {
  /**
   * The BullMQ key prefix, `bull` in production; tests give each app its own. With
   * REDIS_CLUSTER_NODES it gets the stream key's hash tag like the default (`clusterKeys`).
   */
  queuePrefix?: string;
}

export function loadConfig(env: Env = process.env, overrides: ConfigOverrides = {}): Config {
  const problems: string[] = [];
  const str = (name: string, fallback: string): string => {
    const value = env[name]?.trim();
    return value ? value : fallback;
  };
  const optional = (name: string): string | undefined => env[name]?.trim() || undefined;
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw) || value < min || value > max) {
      problems.push(`${name}: expected an integer from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  };
  const oneOf = <T extends string>(name: string, values: readonly T[], fallback: T): T => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    if ((values as readonly string[]).includes(raw)) return raw as T;
    problems.push(`${name}: expected one of ${values.join(', ')}, got "${raw}"`);
    return fallback;
  };
  const list = (name: string): string[] =>
    (env[name] ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
  /** `model=tokens,…`: each a model id and a context window of at least 1024 tokens. */
  const modelTokens = (name: string): Record<string, number> => {
    const byModel: Record<string, number> = {};
    for (const entry of list(name)) {
      const at = entry.lastIndexOf('=');
      const model = entry.slice(0, at).trim();
      const tokens = Number(entry.slice(at + 1).trim());
      if (at <= 0 || !model || !Number.isInteger(tokens) || tokens < 1024) {
        problems.push(`${name}: expected model=tokens (tokens ≥ 1024), got "${entry}"`);
        continue;
      }
      byModel[model] = tokens;
    }
    return byModel;
  };
  const url = (name: string, fallback: string | undefined, protocols: string[]) => {
    const raw = optional(name) ?? fallback;
    if (raw === undefined) return undefined;
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) throw new Error('protocol');
    } catch {
      problems.push(`${name}: expected a ${protocols.join(' or ')} URL, got "${raw}"`);
    }
    return raw;
  };

  /** `host:port,host:port`; undefined when unset. */
  const nodes = (name: string): RedisNode[] | undefined => {
    const entries = list(name);
    if (entries.length === 0) return undefined;
    const parsed: RedisNode[] = [];
    for (const entry of entries) {
      const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(entry);
      const port = Number(match?.[2]);
      if (!match || port < 1 || port > 65535) {
        problems.push(
          `${name}: expected host:port entries with a port from 1 to 65535, got "${entry}"`,
        );
        return undefined;
      }
      parsed.push({ host: (match[1] as string).replace(/^\[(.*)\]$/, '$1'), port });
    }
    return parsed;
  };

  const databaseUrl = str('DATABASE_URL', 'file:./db/sqlite.db');
  if (
    /^[a-z]+:\/\//i.test(databaseUrl) &&
    !databaseUrl.startsWith('file:') &&
    !/^postgres(ql)?:\/\//i.test(databaseUrl)
  ) {
    problems.push(
      `DATABASE_URL: expected file:<path> (SQLite) or postgres://… (PostgreSQL), got "${redactUrl(databaseUrl)}"`,
    );
  }

  const logLevel = str('LOG_LEVEL', 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  const apiKey = optional('OPENAI_API_KEY');
  const baseUrl = url('OPENAI_BASE_URL', undefined, ['http:', 'https:']);
  const allowed = list('CHAT_ALLOWED_MODELS');
  const defaultModel = str('CHAT_DEFAULT_MODEL', 'gpt-4o-mini');
  if (allowed.length > 0 && !allowed.includes(defaultModel)) {
    problems.push(
      `CHAT_DEFAULT_MODEL: "${defaultModel}" is not in CHAT_ALLOWED_MODELS (${allowed.join(', ')})`,
    );
  }
  const adminPassword = optional('ADMIN_PASSWORD');

  const redisUrl = url('REDIS_URL', 'redis://localhost:6379', ['redis:', 'rediss:']) as string;
  const clusterNodes = nodes('REDIS_CLUSTER_NODES') ?? null;
  let streamKey = str('REDIS_STREAM_KEY', 'agent_events');
  let queuePrefix = overrides.queuePrefix ?? 'bull';
  if (clusterNodes) {
    // Only the credentials and TLS of REDIS_URL apply to the nodes, and a Cluster has no SELECT.
    const database = URL.parse(redisUrl)?.pathname ?? '';
    if (!['', '/', '/0'].includes(database)) {
      problems.push(`REDIS_URL: a Redis Cluster has only database 0; drop "${database}" from it`);
    }
    if (hashTagOf(streamKey) === undefined && /[{}]/.test(streamKey)) {
      problems.push(
        `REDIS_STREAM_KEY: with REDIS_CLUSTER_NODES, give it one hash tag ({tag}) or no braces, got "${streamKey}"`,
      );
    }
    ({ streamKey, queuePrefix } = clusterKeys(streamKey, queuePrefix));
  }

  const webhooks = parseWebhooks(env, problems, { list, int, url });

  const toolsFile = optional('TOOLS_FILE') ?? null;
  let servers: ToolsFile = { http: [], mcp: [] };
  if (toolsFile) {
    // ${VAR}s in the file come from this same environment: config stays the one reader of it.
    const read = readToolsFile(toolsFile, env);
    if (read.file) servers = read.file;
    for (const problem of read.problems) problems.push(`TOOLS_FILE: ${toolsFile}: ${problem}`);
  }

  const config: Config = {
    port: int('PORT', 3000, 0, 65535),
    databaseUrl,
    databasePoolSize: int('DATABASE_POOL_SIZE', 10, 1, 1000),
    redis: {
      url: redisUrl,
      clusterNodes,
      streamKey,
      streamMaxLen: int('REDIS_STREAM_MAXLEN', 100_000, 1),
      consumerGroup: str('REDIS_CONSUMER_GROUP', 'agent_runtime'),
      consumerName: str('REDIS_CONSUMER_NAME', `worker-${process.pid}`),
      queuePrefix,
    },
    stream: {
      claimIdleMs: int('STREAM_CLAIM_IDLE_MS', 60_000, 1),
      maxDeliveries: int('STREAM_MAX_DELIVERIES', 5, 1),
      runFeedTtlS: int('RUN_FEED_TTL_S', 3600, 1),
    },
    // With only a base URL (Ollama, vLLM, llama.cpp…) the SDK still wants a key: send a placeholder.
    openai: { apiKey: apiKey ?? (baseUrl ? 'not-needed' : undefined), baseUrl },
    chat: {
      allowedModels: allowed.length > 0 ? allowed : null,
      defaultModel,
      summaryModel: optional('CHAT_SUMMARY_MODEL') ?? null,
      recentMessages: int('CHAT_MEMORY_RECENT_MESSAGES', 8, 1, 1000),
      systemPrompt: optional('CHAT_SYSTEM_PROMPT') ?? null,
      maxMessageChars: int('CHAT_MAX_MESSAGE_CHARS', 32_000, 1),
      multitask: oneOf('CHAT_MULTITASK', MULTITASK, 'enqueue'),
      contextTokens: int('CHAT_CONTEXT_TOKENS', 128_000, 1024),
      modelContextTokens: modelTokens('CHAT_MODEL_CONTEXT_TOKENS'),
      maxOutputTokens: int('CHAT_MAX_OUTPUT_TOKENS', 4096, 1),
      summaryMaxTokens: int('CHAT_SUMMARY_MAX_TOKENS', 1024, 16),
      titleModel: optional('CHAT_TITLE_MODEL') ?? null,
    },
    run: {
      attempts: int('RUN_ATTEMPTS', 3, 1, 100),
      backoffMs: int('RUN_BACKOFF_MS', 1000, 0),
      llmTimeoutMs: int('LLM_TIMEOUT_MS', 60_000, 1),
      workerConcurrency: int('WORKER_CONCURRENCY', 256, 1, 1000),
      staleMs: int('RUN_STALE_MS', 300_000, 1000),
      lockMs: int('RUN_LOCK_MS', 30_000, 1000),
      stalledCheckMs: int('RUN_STALLED_CHECK_MS', 30_000, 500),
      maxSteps: int('RUN_MAX_STEPS', 10, 1, 1000),
      actionTimeoutMs: int('RUN_ACTION_TIMEOUT_MS', 3_600_000, 1000),
    },
    tools: {
      file: toolsFile,
      servers,
      defaultTools: list('CHAT_DEFAULT_TOOLS'),
      concurrency: int('TOOL_CONCURRENCY', 4, 1, 1000),
      maxOutputChars: int('TOOL_MAX_OUTPUT_CHARS', 20_000, 100),
    },
    threads: {
      retentionDays: env.THREAD_RETENTION_DAYS?.trim()
        ? int('THREAD_RETENTION_DAYS', 0, 1, 36_500)
        : null,
    },
    webhooks,
    http: {
      maxBodyBytes: int('HTTP_MAX_BODY_BYTES', 1_048_576, 1),
      corsOrigins: list('CORS_ORIGINS'),
    },
    apiKeys: list('API_KEYS'),
    admin: {
      user: str('ADMIN_USER', 'admin'),
      password: adminPassword ?? crypto.randomUUID().replaceAll('-', ''),
      passwordGenerated: adminPassword === undefined,
    },
    logLevel,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Sent unless WEBHOOK_EVENTS says otherwise: a run's ends, and its pauses for its client. */
export const DEFAULT_WEBHOOK_EVENTS: EventType[] = [
  'agent.run.completed',
  'agent.run.failed',
  'agent.run.cancelled',
  'agent.run.requires_action',
];
/** Deltas are not stored events (they go to the stream straight away): follow a run's feed. */
const WEBHOOK_EVENT_TYPES = EVENT_TYPES.filter((type) => type !== 'agent.run.delta');
const DEFAULT_RETRY_SCHEDULE_MS = [5000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000];

/** The WEBHOOK_* variables; a secret is required as soon as a delivery could be made. */
function parseWebhooks(
  env: Env,
  problems: string[],
  read: {
    list: (name: string) => string[];
    int: (name: string, fallback: number, min: number, max?: number) => number;
    url: (name: string, fallback: string | undefined, protocols: string[]) => string | undefined;
  },
): Config['webhooks'] {
  const url = read.url('WEBHOOK_URL', undefined, ['http:', 'https:']) ?? null;
  const allowedUrls = read.list('WEBHOOK_ALLOWED_URLS');
  for (const prefix of allowedUrls) {
    const parsed = URL.parse(prefix);
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.username) {
      problems.push(
        `WEBHOOK_ALLOWED_URLS: expected http or https URL prefixes without credentials, got "${prefix}"`,
      );
    }
  }
  const secret = env.WEBHOOK_SECRET?.trim() || null;
  if (secret !== null && !isWebhookSecret(secret)) {
    // Never the value itself: it is a secret.
    problems.push(
      'WEBHOOK_SECRET: expected whsec_ followed by 24 to 64 bytes in base64 (for example `whsec_$(openssl rand -base64 32)`)',
    );
  } else if (secret === null && (url !== null || allowedUrls.length > 0)) {
    problems.push(
      'WEBHOOK_SECRET: required with WEBHOOK_URL or WEBHOOK_ALLOWED_URLS (every delivery is signed)',
    );
  }
  const named = read.list('WEBHOOK_EVENTS');
  for (const type of named) {
    if (!(WEBHOOK_EVENT_TYPES as readonly string[]).includes(type)) {
      problems.push(
        `WEBHOOK_EVENTS: expected event types among ${WEBHOOK_EVENT_TYPES.join(', ')}, got "${type}"`,
      );
    }
  }
  const schedule = read.list('WEBHOOK_RETRY_SCHEDULE_MS');
  const retryScheduleMs = schedule.map(Number);
  if (retryScheduleMs.some((ms, i) => !/^\d+$/.test(schedule[i] as string) || ms > 86_400_000)) {
    problems.push(
      `WEBHOOK_RETRY_SCHEDULE_MS: expected delays in ms (0 to 86400000), comma-separated, got "${schedule.join(',')}"`,
    );
  }
  return {
    url,
    secret,
    events: named.length > 0 ? (named as EventType[]) : DEFAULT_WEBHOOK_EVENTS,
    allowedUrls,
    maxAttempts: read.int('WEBHOOK_MAX_ATTEMPTS', 12, 1, 100),
    retryScheduleMs: retryScheduleMs.length > 0 ? retryScheduleMs : DEFAULT_RETRY_SCHEDULE_MS,
  };
}

/** `whsec_` and the base64 of a 24- to 64-byte key, as the Standard Webhooks scheme has it. */
function isWebhookSecret(secret: string): boolean {
  const key = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || key.length % 4 !== 0) return false;
  const bytes = Buffer.from(key, 'base64').length;
  return bytes >= 24 && bytes <= 64;
}

/** A model's context window: its CHAT_MODEL_CONTEXT_TOKENS entry, else CHAT_CONTEXT_TOKENS. */
export function contextTokensFor(config: Pick<Config, 'chat'>, model: string): number {
  return config.chat.modelContextTokens[model] ?? config.chat.contextTokens;
}
