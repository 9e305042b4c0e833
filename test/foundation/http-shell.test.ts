import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

describe.each(backends())('HTTP shell on %s storage', (backend) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(backend, { CORS_ORIGINS: 'https://app.example.com', BODY_LIMIT_BYTES: '2048' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers /health without credentials, with a request id header', async () => {
    const response = await server.request('GET', '/health', { key: null });
    expect(response.status).toBe(200);
    expect(response.body.status).toBe('ok');
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('echoes a sane incoming request id and logs it on every line of that request, with one access line when it ends', async () => {
    const response = await server.request('GET', '/health', { key: null, headers: { 'x-request-id': 'trace-abc-123' } });
    expect(response.headers.get('x-request-id')).toBe('trace-abc-123');
    await expect.poll(() => server.logs.filter((line) => line.includes('trace-abc-123')).length).toBeGreaterThanOrEqual(1);
    const lines = server.logs.filter((line) => line.includes('trace-abc-123')).map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const line of lines) expect(line.reqId).toBe('trace-abc-123');
    // One line per request (not Fastify's two): method, path, status and time, written as it ends.
    const access = lines.filter((line) => line.msg === 'request completed');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ req: { method: 'GET', url: '/health' }, res: { statusCode: 200 } });
    expect(access[0]!.responseTime).toEqual(expect.any(Number));
    expect(lines.some((line) => line.msg === 'incoming request')).toBe(false);
  });

  it('sets security headers', async () => {
    const response = await server.request('GET', '/health', { key: null });
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(response.headers.get('strict-transport-security')).toContain('max-age');
  });

  it('allows only the configured CORS origins', async () => {
    const allowed = await fetch(`${server.url}/health`, { headers: { origin: 'https://app.example.com' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const denied = await fetch(`${server.url}/health`, { headers: { origin: 'https://evil.example.com' } });
    expect(denied.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers unknown routes with a 404 problem', async () => {
    const response = await server.request('GET', '/v1/nothing-here');
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toContain('application/problem+json');
    expect(response.body).toMatchObject({ status: 404, code: 'not_found', title: 'Not Found' });
  });

  it('answers malformed JSON with 400, wrong types with 422 naming the field, oversized bodies with 413', async () => {
    const malformed = await server.request('POST', '/v1/keys', { body: '{"name": ' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('malformed_json');

    const wrongType = await server.request('POST', '/v1/keys', { body: { name: 42 } });
    expect(wrongType.status).toBe(422);
    expect(wrongType.body.code).toBe('validation_failed');
    expect(wrongType.body.field).toBe('body.name');

    const oversized = await server.request('POST', '/v1/keys', { body: { name: 'x'.repeat(5000) } });
    expect(oversized.status).toBe(413);
    expect(oversized.body.code).toBe('payload_too_large');
  });

  it('requires credentials and refuses bad ones with 401', async () => {
    expect((await server.request('GET', '/v1/keys', { key: null })).status).toBe(401);
    const bad = await server.request('GET', '/v1/keys', { key: 'anima_sk_AAAAAAAA_' + 'b'.repeat(40) });
    expect(bad.status).toBe(401);
    expect(bad.body.code).toBe('unauthorized');
  });

  it('reports each dependency and provider on /health/detailed, to admins only', async () => {
    const denied = await server.request('GET', '/health/detailed', { key: server.internalKey });
    expect(denied.status).toBe(403);
    const response = await server.request('GET', '/health/detailed');
    expect(response.status).toBe(200);
    expect(response.body.database).toMatchObject({ status: 'ok', kind: backend === 'embedded' ? 'embedded' : 'postgres' });
    expect(response.body.cache).toMatchObject({ status: 'ok', kind: backend === 'embedded' ? 'memory' : 'redis' });
    expect(response.body.queue).toMatchObject({ status: 'ok', kind: backend === 'embedded' ? 'memory' : 'bullmq' });
    expect(Object.keys(response.body.providers)).toEqual(
      expect.arrayContaining(['openrouter', 'openai', 'xai', 'gemini', 'elevenlabs', 'minimax', 'fal', 'stability', 'kie']),
    );
    expect(response.body.providers.openrouter.configured).toBe(false);
  });

  it('serves OpenAPI with schemas for its routes, and the interactive reference', async () => {
    const openapi = await server.request('GET', '/openapi.json', { key: null });
    expect(openapi.status).toBe(200);
    expect(openapi.body.openapi).toBe('3.1.0');
    expect(openapi.body.paths['/v1/keys'].post.requestBody).toBeDefined();
    const docs = await fetch(`${server.url}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');
  });

  it('exposes Prometheus metrics by route template and status', async () => {
    await server.request('GET', '/health', { key: null });
    const response = await fetch(`${server.url}/metrics`);
    const text = await response.text();
    expect(text).toMatch(/anima_http_requests_total\{method="GET",route="\/health",status="200"\} \d+/);
    expect(text).toContain('anima_http_request_duration_seconds_bucket');
    expect(text).toContain('anima_process_resident_memory_bytes');
  });
});
