import { describe, expect, test } from 'bun:test';
import { type ConfigError, DEFAULT_WEBHOOK_EVENTS, loadConfig } from '../../src/config';
import { isAllowedMessageWebhook, isWebhookTarget, loggableUrl } from '../../src/webhooks/urls';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    return (error as ConfigError).problems;
  }
}

describe('WEBHOOK_* configuration', () => {
  test('defaults: no webhooks, the four events, 12 attempts, the documented schedule', () => {
    expect(loadConfig({}).webhooks).toEqual({
      url: null,
      secret: null,
      events: DEFAULT_WEBHOOK_EVENTS,
      allowedUrls: [],
      maxAttempts: 12,
      retryScheduleMs: [5000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000],
    });
  });

  test('reads every variable', () => {
    const config = loadConfig({
      WEBHOOK_URL: 'https://hooks.example.com/all',
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_EVENTS: 'agent.run.started, agent.thread.deleted',
      WEBHOOK_ALLOWED_URLS: 'https://a.example.com/t, http://127.0.0.1:9000',
      WEBHOOK_MAX_ATTEMPTS: '3',
      WEBHOOK_RETRY_SCHEDULE_MS: '0,10',
    }).webhooks;
    expect(config).toEqual({
      url: 'https://hooks.example.com/all',
      secret: SECRET,
      events: ['agent.run.started', 'agent.thread.deleted'],
      allowedUrls: ['https://a.example.com/t', 'http://127.0.0.1:9000'],
      maxAttempts: 3,
      retryScheduleMs: [0, 10],
    });
  });

  test.each([
    ['WEBHOOK_URL without a secret', { WEBHOOK_URL: 'https://h.example.com' }],
    ['WEBHOOK_ALLOWED_URLS without a secret', { WEBHOOK_ALLOWED_URLS: 'https://h.example.com' }],
    ['a secret without whsec_', { WEBHOOK_SECRET: Buffer.alloc(32).toString('base64') }],
    ['a secret that is not base64', { WEBHOOK_SECRET: 'whsec_not base64!' }],
    ['a secret of 8 bytes', { WEBHOOK_SECRET: `whsec_${Buffer.alloc(8).toString('base64')}` }],
  ])('%s stops the server, naming WEBHOOK_SECRET but never its value', (_, env) => {
    const found = problems(env);
    expect(found).toHaveLength(1);
    expect(found[0]).toStartWith('WEBHOOK_SECRET:');
    const secret = (env as Record<string, string>).WEBHOOK_SECRET;
    if (secret) expect(found[0]).not.toContain(secret.slice(6));
  });

  test.each([
    ['WEBHOOK_URL', 'ftp://h.example.com'],
    ['WEBHOOK_URL', 'not a url'],
    ['WEBHOOK_ALLOWED_URLS', 'h.example.com/path'],
    ['WEBHOOK_ALLOWED_URLS', 'https://user:pw@h.example.com'],
    ['WEBHOOK_EVENTS', 'agent.run.delta'],
    ['WEBHOOK_EVENTS', 'agent.run.finished'],
    ['WEBHOOK_MAX_ATTEMPTS', '0'],
    ['WEBHOOK_RETRY_SCHEDULE_MS', '100,-1'],
    ['WEBHOOK_RETRY_SCHEDULE_MS', '1.5'],
  ])('a bad %s (%s) is named', (name, value) => {
    const found = problems({ WEBHOOK_SECRET: SECRET, [name]: value });
    expect(found).toHaveLength(1);
    expect(found[0]).toStartWith(`${name}:`);
  });
});

describe('which URLs are sent webhooks', () => {
  const config = loadConfig({
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_URL: 'https://ops.example.com/all',
    WEBHOOK_ALLOWED_URLS: 'https://hooks.example.com/tenants/a,http://127.0.0.1:9000/',
  });

  test.each([
    ['https://hooks.example.com/tenants/a', true],
    ['https://hooks.example.com/tenants/a/', true],
    ['https://hooks.example.com/tenants/a/runs?token=1', true],
    ['https://hooks.example.com:443/tenants/a', true],
    ['https://hooks.example.com/tenants/ab', false],
    ['https://hooks.example.com/tenants', false],
    ['http://hooks.example.com/tenants/a', false],
    ['https://hooks.example.com:8443/tenants/a', false],
    ['https://evil.example.com/tenants/a', false],
    ['https://hooks.example.com.evil.com/tenants/a', false],
    ['https://me@hooks.example.com/tenants/a', false],
    ['http://127.0.0.1:9000/anything', true],
    ['http://127.0.0.1:9001/anything', false],
    ['http://localhost:9000/anything', false],
    ['https://ops.example.com/all', false],
    ['not a url', false],
  ])('a message may name %s: %p', (url, allowed) => {
    expect(isAllowedMessageWebhook(config, url)).toBe(allowed);
  });

  test('the sender sends to WEBHOOK_URL and to allowed URLs only', () => {
    expect(isWebhookTarget(config, 'https://ops.example.com/all')).toBe(true);
    expect(isWebhookTarget(config, 'https://hooks.example.com/tenants/a/x')).toBe(true);
    expect(isWebhookTarget(config, 'https://ops.example.com/other')).toBe(false);
  });

  test('without WEBHOOK_ALLOWED_URLS a message may name none', () => {
    const none = loadConfig({ WEBHOOK_SECRET: SECRET, WEBHOOK_URL: 'https://ops.example.com/all' });
    expect(isAllowedMessageWebhook(none, 'https://ops.example.com/all')).toBe(false);
  });

  test('a logged URL keeps no query (it may hold a token)', () => {
    expect(loggableUrl('https://h.example.com/a?token=secret')).toBe('https://h.example.com/a');
  });
});
