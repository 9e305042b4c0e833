import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('applies the contract defaults with nothing set', () => {
    const config = loadConfig({});
    expect(config.port).toBe(8000);
    expect(config.host).toBe('0.0.0.0');
    expect(config.dataDir).toBe('./data');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(config.runWorkersInProcess).toBe(true);
    expect(config.providers.openrouter.baseUrl).toBe('https://openrouter.ai/api/v1');
    expect(config.providers.gemini.baseUrl).toBe('https://generativelanguage.googleapis.com');
    expect(config.falQueueBaseUrl).toBe('https://queue.fal.run');
    expect(Object.isFrozen(config.providers.openai)).toBe(true);
  });

  it('reads provider keys and base URLs, trimming trailing slashes', () => {
    const config = loadConfig({ OPENROUTER_API_KEY: 'sk-or-1', OPENROUTER_BASE_URL: 'http://127.0.0.1:9999/', REDIS_URL: 'redis://localhost:6379' });
    expect(config.providers.openrouter).toEqual({ baseUrl: 'http://127.0.0.1:9999', platformKey: 'sk-or-1' });
    expect(config.runWorkersInProcess).toBe(false);
  });

  it('names every bad variable at once', () => {
    let caught: unknown;
    try {
      loadConfig({ PORT: '-1', REDIS_URL: 'http://x', ENCRYPTION_KEY: 'abc', OPENAI_BASE_URL: 'not a url', CORS_ORIGINS: 'https://a.example' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as ConfigError).message;
    for (const variable of ['PORT', 'REDIS_URL', 'ENCRYPTION_KEY', 'OPENAI_BASE_URL']) expect(message).toContain(variable);
  });

  it('bounds BACKGROUND_JOB_MAX_DEFER_MS to ten minutes', () => {
    expect(loadConfig({ BACKGROUND_JOB_MAX_DEFER_MS: '600000' }).backgroundJobs.maxDeferMs).toBe(600_000);
    expect(() => loadConfig({ BACKGROUND_JOB_MAX_DEFER_MS: '600001' })).toThrow(/BACKGROUND_JOB_MAX_DEFER_MS/);
  });

  it('requires ENCRYPTION_KEY in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/ENCRYPTION_KEY/);
    expect(() => loadConfig({ NODE_ENV: 'production', ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64') })).not.toThrow();
  });
});
