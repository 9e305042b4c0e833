import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyRequest } from 'fastify';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { undeclaredContextHeaderReads } from '../../src/infra/http/openapi.js';
import { endUserContext } from '../../src/modules/identity/auth.js';
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

  it('declares the context headers on memory, images and voice operations too', () => {
    const headerNames = (path: string, method: string) =>
      ((document.paths[path]?.[method]?.parameters ?? []) as Array<{ in: string; name: string }>).filter((parameter) => parameter.in === 'header').map((parameter) => parameter.name.toLowerCase());
    const place = ['x-user-id', 'x-username', 'x-channel-id', 'x-guild-id'];
    for (const path of ['/v1/characters/{id}/memories', '/v1/characters/{id}/memories/search', '/v1/characters/{id}/memories/import']) expect(headerNames(path, 'post'), path).toEqual(expect.arrayContaining(place));
    for (const [path, method] of [
      ['/v1/images/generations', 'post'],
      ['/v1/images', 'get'],
      ['/v1/images/{id}', 'patch'],
      ['/v1/images/{id}/content', 'get'],
      ['/v1/vision/describe', 'post'],
      ['/v1/tts', 'post'],
      ['/v1/characters/{id}/voice', 'post'],
      ['/v1/audio/transcriptions', 'post'],
      ['/v1/characters/{id}/memories', 'get'],
    ] as const) {
      expect(document.paths[path]?.[method], `${method} ${path}`).toBeDefined();
      expect(headerNames(path, method), `${method} ${path}`).toEqual(expect.arrayContaining(['x-user-id', 'x-username']));
    }
  });

  it('no route reads a context header it does not declare (every operation exercised with all four headers)', async () => {
    undeclaredContextHeaderReads.clear();
    const context = { 'x-user-id': 'discord:header-probe', 'x-username': 'Probe', 'x-channel-id': 'channel-1', 'x-guild-id': 'guild-1' };
    const created = await server.request('POST', '/v1/characters', { body: { name: 'Header Probe', slug: 'header-probe' } });
    expect(created.status).toBe(201);
    // The routes known to read X-Guild-Id, with bodies that get them as far as reading it.
    const group = await server.request('POST', '/v1/characters/header-probe/memories', { key: server.internalKey, headers: context, body: { scope: 'group', content: 'The guild meets on Fridays.' } });
    expect(group.status, group.text).toBe(201);
    expect(group.body.guild_id).toBe('guild-1');
    const search = await server.request('POST', '/v1/characters/header-probe/memories/search', { key: server.internalKey, headers: context, body: { query: 'Fridays' } });
    expect(search.status, search.text).toBe(200);
    const imported = await server.request('POST', '/v1/characters/header-probe/memories/import', {
      key: server.internalKey,
      headers: context,
      body: { memories: [{ scope: 'group', content: 'The guild likes tea.' }] },
    });
    expect(imported.status, imported.text).toBeLessThan(300);
    // Then every documented operation, with its own example body when it has one (statuses do not
    // matter here: what a handler read before answering does). Admin-only routes are refused to a service key.
    const exampleBody = (operation: { requestBody?: { content?: Record<string, { example?: unknown; examples?: Record<string, { value: unknown }> }> } }) => {
      const content = operation.requestBody?.content?.['application/json'];
      return content?.example ?? Object.values(content?.examples ?? {})[0]?.value ?? {};
    };
    for (const [path, operations] of Object.entries(document.paths as Record<string, Record<string, Parameters<typeof exampleBody>[0]>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(method) || path === '/v1/me') continue;
        const url = path.replaceAll('{id}', 'header-probe').replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000');
        await server.request(method.toUpperCase(), url, { key: server.internalKey, headers: context, body: method === 'get' || method === 'delete' ? undefined : exampleBody(operation) });
      }
    }
    // What the examples created (a character "luna", keys…) must not leak into the quickstart checks.
    for (const slug of ['luna', 'header-probe']) await server.request('DELETE', `/v1/characters/${slug}`);
    expect([...undeclaredContextHeaderReads]).toEqual([]);
  }, 120_000);

  it('a route that reads a header it does not declare is caught', async () => {
    undeclaredContextHeaderReads.clear();
    // GET /v1/images declares the user headers, not the place ones; read one there on purpose.
    const request = { method: 'GET', url: '/v1/images', routeOptions: { url: '/v1/images', config: {} }, headers: { 'x-guild-id': 'g' } } as unknown as FastifyRequest;
    expect(endUserContext(request).guildId).toBe('g');
    expect(endUserContext(request).externalUserId).toBeUndefined();
    expect([...undeclaredContextHeaderReads]).toEqual(['GET /v1/images x-guild-id']);
    undeclaredContextHeaderReads.clear();
  });

  it('context headers are read only through endUserContext (so the check above sees every read)', () => {
    const allowed = new Set(['src/modules/identity/auth.ts', 'src/infra/http/openapi.ts', 'src/infra/http/input-guard.ts']);
    const offenders: string[] = [];
    const walk = (directory: string) => {
      for (const entry of readdirSync(directory, { withFileTypes: true })) {
        const file = path.join(directory, entry.name);
        if (entry.isDirectory()) {
          if (file !== 'src/bot') walk(file);
        } else if (file.endsWith('.ts') && !file.endsWith('.test.ts') && !allowed.has(file)) {
          // A read: headers['x-…'], headers.get('x-…'), headerValue(…, 'x-…'); names in messages are fine.
          if (/(headers\s*\[\s*|headers\.get\(\s*|headerValue\([^)]*)['"]x-(user-id|username|channel-id|guild-id)['"]/i.test(readFileSync(file, 'utf8'))) offenders.push(file);
        }
      }
    };
    walk('src');
    expect(offenders).toEqual([]);
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
