import { describe, expect, test } from 'bun:test';
import { ConfigError, loadConfig } from '../../src/config';
import { clusterKeys, hashTagOf } from '../../src/redis/cluster-keys';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadConfig', () => {
  test('defaults are the documented ones', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3000);
    expect(config.databaseUrl).toBe('file:./db/sqlite.db');
    expect(config.databasePoolSize).toBe(10);
    expect(config.redis).toMatchObject({
      url: 'redis://localhost:6379',
      clusterNodes: null,
      streamKey: 'agent_events',
      queuePrefix: 'bull',
      streamMaxLen: 100_000,
      consumerGroup: 'agent_runtime',
      consumerName: `worker-${process.pid}`,
    });
    expect(config.stream).toEqual({ claimIdleMs: 60_000, maxDeliveries: 5, runFeedTtlS: 3600 });
    expect(config.openai).toEqual({ apiKey: undefined, baseUrl: undefined });
    expect(config.chat).toEqual({
      allowedModels: null,
      defaultModel: 'gpt-4o-mini',
      summaryModel: null,
      recentMessages: 8,
      systemPrompt: null,
      maxMessageChars: 32_000,
      multitask: 'enqueue',
      contextTokens: 128_000,
      modelContextTokens: {},
      maxOutputTokens: 4096,
      summaryMaxTokens: 1024,
      titleModel: null,
    });
    expect(config.run).toEqual({
      attempts: 3,
      backoffMs: 1000,
      llmTimeoutMs: 60_000,
      workerConcurrency: 256,
      staleMs: 300_000,
      lockMs: 30_000,
      stalledCheckMs: 30_000,
      maxSteps: 10,
      actionTimeoutMs: 3_600_000,
    });
    expect(config.tools).toEqual({
      file: null,
      servers: { http: [], mcp: [] },
      defaultTools: [],
      concurrency: 4,
      maxOutputChars: 20_000,
    });
    expect(config.threads).toEqual({ retentionDays: null });
    expect(config.http).toEqual({ maxBodyBytes: 1_048_576, corsOrigins: [] });
    expect(config.apiKeys).toEqual([]);
    expect(config.admin.user).toBe('admin');
    expect(config.admin.passwordGenerated).toBe(true);
    expect(config.admin.password.length).toBeGreaterThanOrEqual(16);
    expect(config.logLevel).toBe('info');
  });

  test('a postgres:// or postgresql:// URL selects PostgreSQL, with its pool size', () => {
    for (const url of ['postgres://u:p@db:5432/agent', 'postgresql://db/agent']) {
      const config = loadConfig({ DATABASE_URL: url, DATABASE_POOL_SIZE: '25' });
      expect(config.databaseUrl).toBe(url);
      expect(config.databasePoolSize).toBe(25);
    }
  });

  test('a bad DATABASE_URL is named without its password', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://root:hunter2@db/agent' })).toThrow(
      /DATABASE_URL: expected file:<path> \(SQLite\) or postgres:\/\/… \(PostgreSQL\), got "mysql:\/\/root:\*\*\*@db\/agent"/,
    );
  });

  test('reads every variable', () => {
    const config = loadConfig({
      PORT: '8080',
      CHAT_ALLOWED_MODELS: 'a, b',
      CHAT_DEFAULT_MODEL: 'b',
      CHAT_SUMMARY_MODEL: 'small',
      CHAT_MEMORY_RECENT_MESSAGES: '4',
      CHAT_SYSTEM_PROMPT: 'Be brief.',
      OPENAI_BASE_URL: 'http://127.0.0.1:4010/v1',
      API_KEYS: 'k1,k2',
      ADMIN_PASSWORD: 'secret',
    });
    expect(config.port).toBe(8080);
    expect(config.chat.allowedModels).toEqual(['a', 'b']);
    expect(config.chat.summaryModel).toBe('small');
    expect(config.chat.recentMessages).toBe(4);
    expect(config.chat.systemPrompt).toBe('Be brief.');
    expect(config.apiKeys).toEqual(['k1', 'k2']);
    expect(config.admin).toEqual({ user: 'admin', password: 'secret', passwordGenerated: false });
  });

  test('only a base URL sends a placeholder key; neither leaves the model unconfigured', () => {
    expect(loadConfig({ OPENAI_BASE_URL: 'http://localhost:11434/v1' }).openai.apiKey).toBe(
      'not-needed',
    );
    expect(loadConfig({ OPENAI_API_KEY: 'sk-1' }).openai.apiKey).toBe('sk-1');
    expect(loadConfig({}).openai.apiKey).toBeUndefined();
  });

  test.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['REDIS_URL', 'http://localhost'],
    ['REDIS_STREAM_MAXLEN', '0'],
    ['RUN_ATTEMPTS', '1.5'],
    ['RUN_BACKOFF_MS', '-1'],
    ['LLM_TIMEOUT_MS', 'soon'],
    ['WORKER_CONCURRENCY', '0'],
    ['CHAT_MEMORY_RECENT_MESSAGES', 'x'],
    ['CHAT_MAX_MESSAGE_CHARS', '0'],
    ['HTTP_MAX_BODY_BYTES', '1e6'],
    ['OPENAI_BASE_URL', 'not a url'],
    ['LOG_LEVEL', 'loud'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['DATABASE_POOL_SIZE', '0'],
    ['STREAM_MAX_DELIVERIES', '0'],
    ['RUN_LOCK_MS', '10'],
    ['RUN_STALLED_CHECK_MS', 'often'],
    ['REDIS_CLUSTER_NODES', 'localhost'],
    ['REDIS_CLUSTER_NODES', 'localhost:0'],
    ['REDIS_CLUSTER_NODES', '10.0.0.1:7000,10.0.0.2:65536'],
    ['REDIS_CLUSTER_NODES', 'redis://10.0.0.1:7000'],
    ['TOOL_CONCURRENCY', '0'],
    ['TOOL_MAX_OUTPUT_CHARS', 'lots'],
    ['RUN_MAX_STEPS', '0'],
    ['RUN_ACTION_TIMEOUT_MS', '-5'],
    ['THREAD_RETENTION_DAYS', '0'],
    ['THREAD_RETENTION_DAYS', '1.5'],
    ['THREAD_RETENTION_DAYS', 'forever'],
    ['TOOLS_FILE', '/nonexistent/tools.json'],
  ])('a bad %s (%s) is named', (name, value) => {
    const found = problems({ [name]: value });
    expect(found).toHaveLength(1);
    expect(found[0]).toStartWith(`${name}:`);
  });

  test('REDIS_CLUSTER_NODES: the seed nodes, and every key in the stream key’s slot', () => {
    const config = loadConfig({
      REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-b:7001 ,[::1]:7002',
      REDIS_URL: 'rediss://app:secret@ignored:6379',
    });
    expect(config.redis).toMatchObject({
      url: 'rediss://app:secret@ignored:6379',
      clusterNodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      streamKey: '{agent_events}',
      queuePrefix: '{agent_events}:bull',
    });
    // A stream key with its own tag keeps it; the queue prefix takes the same one.
    const tagged = loadConfig({
      REDIS_CLUSTER_NODES: 'h:1',
      REDIS_STREAM_KEY: 'app:{agent}:events',
    });
    expect(tagged.redis).toMatchObject({
      streamKey: 'app:{agent}:events',
      queuePrefix: '{agent}:bull',
    });
    // Without cluster nodes nothing is renamed.
    expect(loadConfig({ REDIS_STREAM_KEY: 'app:{agent}:events' }).redis.queuePrefix).toBe('bull');
  });

  test('REDIS_CLUSTER_NODES: a database number or a stream key with braces but no tag is named', () => {
    expect(problems({ REDIS_CLUSTER_NODES: 'h:1', REDIS_URL: 'redis://h:6379/2' })).toEqual([
      'REDIS_URL: a Redis Cluster has only database 0; drop "/2" from it',
    ]);
    expect(problems({ REDIS_CLUSTER_NODES: 'h:1', REDIS_URL: 'redis://h:6379/0' })).toEqual([]);
    expect(problems({ REDIS_CLUSTER_NODES: 'h:1', REDIS_STREAM_KEY: 'a{}b' })[0]).toStartWith(
      'REDIS_STREAM_KEY:',
    );
    // The same values are fine for a single Redis.
    expect(problems({ REDIS_URL: 'redis://h:6379/2', REDIS_STREAM_KEY: 'a{}b' })).toEqual([]);
  });

  test('the hash tag rule: Redis’s own, applied once', () => {
    expect(hashTagOf('{agent_events}:run:r1')).toBe('agent_events');
    expect(hashTagOf('app:{agent}:events')).toBe('agent');
    expect(hashTagOf('a{}b{c}')).toBeUndefined(); // the first { decides, and its tag is empty
    expect(hashTagOf('agent_events')).toBeUndefined();
    const once = clusterKeys('agent_events', 'test-1');
    expect(once).toEqual({ streamKey: '{agent_events}', queuePrefix: '{agent_events}:test-1' });
    expect(clusterKeys(once.streamKey, once.queuePrefix)).toEqual(once);
  });

  test('a default model outside the allow list is named', () => {
    expect(problems({ CHAT_ALLOWED_MODELS: 'a', CHAT_DEFAULT_MODEL: 'b' })[0]).toStartWith(
      'CHAT_DEFAULT_MODEL:',
    );
  });

  test('CHAT_MULTITASK: one of the four modes, or named', () => {
    expect(loadConfig({ CHAT_MULTITASK: 'interrupt' }).chat.multitask).toBe('interrupt');
    expect(problems({ CHAT_MULTITASK: 'sometimes' })).toEqual([
      'CHAT_MULTITASK: expected one of enqueue, reject, interrupt, rollback, got "sometimes"',
    ]);
  });

  test('the tool variables: default tools, concurrency, output cap, steps, action timeout', () => {
    const config = loadConfig({
      CHAT_DEFAULT_TOOLS: 'weather, files__*',
      TOOL_CONCURRENCY: '2',
      TOOL_MAX_OUTPUT_CHARS: '500',
      RUN_MAX_STEPS: '3',
      RUN_ACTION_TIMEOUT_MS: '60000',
    });
    expect(config.tools).toMatchObject({
      defaultTools: ['weather', 'files__*'],
      concurrency: 2,
      maxOutputChars: 500,
    });
    expect(config.run).toMatchObject({ maxSteps: 3, actionTimeoutMs: 60_000 });
  });

  test('THREAD_RETENTION_DAYS: a positive number of days; empty keeps threads forever', () => {
    expect(loadConfig({ THREAD_RETENTION_DAYS: '30' }).threads.retentionDays).toBe(30);
    expect(loadConfig({ THREAD_RETENTION_DAYS: ' ' }).threads.retentionDays).toBeNull();
  });

  test('every bad variable is reported at once', () => {
    expect(problems({ PORT: 'x', RUN_ATTEMPTS: 'y' })).toHaveLength(2);
  });
});
