import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

/** What a newcomer reads first: /, the OpenAPI document behind /docs. One server for the file (read-only checks). */
describe('the API explains itself', () => {
  let server: TestServer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- an OpenAPI document read freely
  let document: any;

  beforeAll(async () => {
    server = await startTestServer('embedded');
    document = (await server.request('GET', '/openapi.json', { key: null })).body;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('GET / points to /docs (a page for browsers, JSON for programs)', async () => {
    const html = await fetch(`${server.url}/`, { headers: { accept: 'text/html' } });
    expect(html.status).toBe(200);
    expect(html.headers.get('content-type')).toContain('text/html');
    expect(await html.text()).toContain('href="/docs"');
    const json = await server.request('GET', '/', { key: null });
    expect(json.body).toMatchObject({ docs: '/docs', openapi: '/openapi.json' });
  });

  it('has a quickstart: where the admin key comes from, service key → X-User-Id → own provider key → chat, and the OpenAI drop-in', () => {
    const description = document.info.description as string;
    expect(description).toContain('ADMIN_API_KEY');
    const steps = ['POST /v1/keys', 'X-User-Id', 'POST /v1/me/provider-keys', 'POST /v1/characters/luna/chat'].map((step) => description.indexOf(step));
    expect(steps.every((position) => position >= 0)).toBe(true);
    expect([...steps].sort((left, right) => left - right)).toEqual(steps);
    expect(description).toMatch(/baseURL: 'http:\/\/localhost:8000\/v1'/);
    expect(description).toContain('character/<slug>');
    expect(description).toContain('shapesinc/<slug>');
    expect(document.servers).toEqual([expect.objectContaining({ url: '/' })]);
  });

  it('describes every tag an operation uses', () => {
    const described = new Set((document.tags as Array<{ name: string; description: string }>).filter((tag) => tag.description).map((tag) => tag.name));
    const used = new Set<string>();
    for (const operations of Object.values(document.paths as Record<string, Record<string, { tags?: string[] }>>)) {
      for (const operation of Object.values(operations)) for (const tag of operation.tags ?? []) used.add(tag);
    }
    const undescribed = [...used].filter((tag) => !described.has(tag));
    // Tags of modules still being built may lag; the core ones must be described.
    for (const tag of ['users', 'identity', 'provider keys', 'characters', 'chat', 'openai', 'conversations', 'memories', 'operations']) expect(undescribed).not.toContain(tag);
  });

  it('documents the context headers on the operations that read them, and not on public ones', () => {
    const headerNames = (path: string, method: string) =>
      ((document.paths[path][method].parameters ?? []) as Array<{ in: string; name: string }>).filter((parameter) => parameter.in === 'header').map((parameter) => parameter.name.toLowerCase());
    expect(headerNames('/v1/characters/{id}/chat', 'post')).toEqual(expect.arrayContaining(['x-user-id', 'x-username', 'x-channel-id', 'x-guild-id']));
    expect(headerNames('/v1/chat/completions', 'post')).toEqual(expect.arrayContaining(['x-user-id', 'x-username', 'x-channel-id', 'x-guild-id']));
    expect(headerNames('/v1/me', 'get')).toEqual(expect.arrayContaining(['x-user-id', 'x-username']));
    expect(headerNames('/v1/me/provider-keys', 'post')).toEqual(expect.arrayContaining(['x-user-id']));
    expect(headerNames('/health', 'get')).toEqual([]);
    const described = (document.paths['/v1/chat/completions'].post.parameters as Array<{ name: string; description?: string }>).find((parameter) => parameter.name === 'x-user-id');
    expect(described?.description).toMatch(/end user/);
  });

  it('has request and response examples on the main operations', () => {
    // One example is written as `example`, several as `examples` (named, each with a value).
    const requestExamples = (path: string, method: string): Array<{ value: unknown }> => {
      const content = document.paths[path][method].requestBody?.content?.['application/json'];
      if (content?.example !== undefined) return [{ value: content.example }];
      return Object.values(content?.examples ?? {});
    };
    const responseExample = (path: string, method: string, status: string) => {
      const content = document.paths[path][method].responses[status]?.content?.['application/json'];
      return content?.example ?? Object.values(content?.examples ?? {})[0];
    };
    expect(requestExamples('/v1/chat/completions', 'post').map((example) => example.value)).toContainEqual(expect.objectContaining({ model: 'character/luna' }));
    expect(responseExample('/v1/chat/completions', 'post', '200')).toMatchObject({ object: 'chat.completion', model: 'character/luna' });
    expect(requestExamples('/v1/characters/{id}/chat', 'post').length).toBeGreaterThan(0);
    expect(responseExample('/v1/characters/{id}/chat', 'post', '200')).toMatchObject({ response: expect.any(String) });
    expect(requestExamples('/v1/keys', 'post').map((example) => example.value)).toContainEqual({ name: 'discord bot', role: 'service' });
    expect(requestExamples('/v1/me/provider-keys', 'post').length).toBeGreaterThan(0);
    expect(requestExamples('/v1/characters', 'post').length).toBeGreaterThan(0);
  });

  it('the quickstart\'s OpenAI drop-in works as written (base URL and model name) up to the key question', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: server.internalKey, maxRetries: 0, defaultHeaders: { 'X-User-Id': 'quickstart-reader' } });
    const models = await client.models.list();
    expect(models.data).toEqual([]);
    await expect(client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: 'Hello!' }] })).rejects.toMatchObject({ status: 404 });
  });
});
