import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/** `!help` is answered without a model call, so these requests measure the limiter alone. */
const help = (slug: string) => ({ model: `character/${slug}`, messages: [{ role: 'user', content: '!help' }] });

describe.each(backends())('per-plan request limits on %s storage', (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend, { RATE_LIMITS_ENABLED: 'true' });
    expect((await server.request('POST', '/v1/characters', { body: { name: 'Limo', slug: 'limo' } })).status).toBe(201);
  }, 240_000);

  afterAll(async () => {
    await server?.stop();
  });

  it('admits the free plan\'s 5 requests a minute per user with RateLimit headers, then 429 in each route\'s error format', async () => {
    const asAda = { key: server.internalKey, headers: { 'x-user-id': 'limit-ada' } };
    const remaining: string[] = [];
    for (let index = 0; index < 5; index += 1) {
      const answer = await server.request('POST', '/v1/chat/completions', { ...asAda, body: help('limo') });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('ratelimit-limit')).toBe('5');
      remaining.push(answer.headers.get('ratelimit-remaining')!);
      expect(Number(answer.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    const refused = await server.request('POST', '/v1/chat/completions', { ...asAda, body: help('limo') });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limited' });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    // The bot protocol shares the same per-user budget and answers problem+json.
    const bot = await server.request('POST', '/v1/characters/limo/chat', { ...asAda, body: { content: '!help' } });
    expect(bot.status).toBe(429);
    expect(bot.headers.get('content-type')).toContain('application/problem+json');
    expect(bot.body).toMatchObject({ code: 'rate_limited', retry_after: expect.any(Number), limit_name: 'requests_per_minute' });
    // Another user is not affected; a plan with a higher limit applies from the next request.
    expect((await server.request('POST', '/v1/chat/completions', { key: server.internalKey, headers: { 'x-user-id': 'limit-bob' }, body: help('limo') })).status).toBe(200);
    expect((await server.request('PATCH', '/v1/admin/users/limit-ada', { body: { plan: 'premium' } })).status).toBe(200);
    const upgraded = await server.request('POST', '/v1/chat/completions', { ...asAda, body: help('limo') });
    expect(upgraded.status).toBe(200);
    expect(upgraded.headers.get('ratelimit-limit')).toBe('30');
  });

  it('counts an OpenAI request against the end user its body names (`user`), not the service key\'s own user', async () => {
    const named = (user: string) => ({ key: server.internalKey, body: { ...help('limo'), user } });
    for (let index = 0; index < 5; index += 1) expect((await server.request('POST', '/v1/chat/completions', named('limit-dee'))).status).toBe(200);
    const refused = await server.request('POST', '/v1/chat/completions', named('limit-dee'));
    expect(refused.status).toBe(429);
    // A different user named by the same key has a budget of its own.
    const other = await server.request('POST', '/v1/chat/completions', named('limit-eve'));
    expect(other.status).toBe(200);
    expect(other.headers.get('ratelimit-remaining')).toBe('4');
  });

  it('does not limit routes that did not opt in', async () => {
    for (let index = 0; index < 8; index += 1) {
      const answer = await server.request('GET', '/v1/wallet/balance', { key: server.internalKey, headers: { 'x-user-id': 'limit-cy' } });
      expect(answer.status).toBe(200);
      expect(answer.headers.get('ratelimit-limit')).toBeNull();
    }
  });
});

describe.runIf(backends().includes('postgres'))('request limits across two replicas on PostgreSQL + Redis', () => {
  let first: TestServer;
  let second: TestServer;

  beforeAll(async () => {
    first = await startTestServer('postgres', { RATE_LIMITS_ENABLED: 'true' });
    second = await startTestServer('postgres', {
      RATE_LIMITS_ENABLED: 'true',
      DATABASE_URL: first.container.config.databaseUrl,
      REDIS_KEY_PREFIX: first.container.config.redisKeyPrefix,
      ADMIN_API_KEY: first.adminKey,
      INTERNAL_API_KEY: first.internalKey,
    });
    expect((await first.request('POST', '/v1/characters', { body: { name: 'Duo', slug: 'duo' } })).status).toBe(201);
    expect((await first.request('POST', '/v1/admin/plans', { body: { id: 'ten-a-minute', name: 'Ten', requests_per_minute: 10 } })).status).toBe(201);
    expect((await first.request('POST', '/v1/users', { key: first.internalKey, body: { external_id: 'replica-user' } })).status).toBe(201);
    expect((await first.request('PATCH', '/v1/admin/users/replica-user', { body: { plan: 'ten-a-minute' } })).status).toBe(200);
  }, 240_000);

  afterAll(async () => {
    await second?.stop();
    await first?.stop();
  });

  it('admits at most the plan\'s limit when 3× the limit arrives spread over both replicas at once', async () => {
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        (index % 2 === 0 ? first : second).request('POST', '/v1/chat/completions', { key: first.internalKey, headers: { 'x-user-id': 'replica-user' }, body: help('duo') }),
      ),
    );
    const admitted = answers.filter((answer) => answer.status === 200);
    const refused = answers.filter((answer) => answer.status === 429);
    expect(admitted).toHaveLength(10);
    expect(refused).toHaveLength(20);
    // Counted per process, each replica would have admitted 10 (20 in all): the count is shared.
    expect(refused.every((answer) => answer.headers.get('ratelimit-limit') === '10' && Number(answer.headers.get('retry-after')) > 0)).toBe(true);
  });
});
