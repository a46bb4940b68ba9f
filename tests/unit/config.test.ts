import { describe, expect, test } from 'bun:test';
import { ConfigError, loadConfig } from '../../src/config';

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
  test('defaults follow DESIGN.md', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3000);
    expect(config.databaseUrl).toBe('file:./db/sqlite.db');
    expect(config.databasePoolSize).toBe(10);
    expect(config.redis).toMatchObject({
      url: 'redis://localhost:6379',
      streamKey: 'agent_events',
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
    });
    expect(config.run).toEqual({
      attempts: 3,
      backoffMs: 1000,
      llmTimeoutMs: 60_000,
      workerConcurrency: 16,
      staleMs: 300_000,
      lockMs: 30_000,
      stalledCheckMs: 30_000,
    });
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
  ])('a bad %s (%s) is named', (name, value) => {
    const found = problems({ [name]: value });
    expect(found).toHaveLength(1);
    expect(found[0]).toStartWith(`${name}:`);
  });

  test('a default model outside the allow list is named', () => {
    expect(problems({ CHAT_ALLOWED_MODELS: 'a', CHAT_DEFAULT_MODEL: 'b' })[0]).toStartWith(
      'CHAT_DEFAULT_MODEL:',
    );
  });

  test('every bad variable is reported at once', () => {
    expect(problems({ PORT: 'x', RUN_ATTEMPTS: 'y' })).toHaveLength(2);
  });
});
