import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenAiFake, startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestResponse, type TestServer } from '../helpers/test-server.js';
import { exampleOf, fillPath, operationsOf, replaceAt, stringPaths, usesOpenAiEnvelope, type Operation } from './openapi-walk.js';

const OPENROUTER_KEY = 'sk-or-v1-hardening-user-key-0123456789abcdef';

/** Is this a contract-shaped error body: problem+json, or OpenAI's envelope on its routes? */
function expectContractError(response: TestResponse, path: string, what: string): void {
  if (response.status < 400) return;
  if (usesOpenAiEnvelope(path)) {
    expect(response.body?.error, what).toMatchObject({ message: expect.any(String), type: expect.any(String) });
  } else {
    expect(response.headers.get('content-type'), what).toContain('application/problem+json');
    expect(response.body, what).toMatchObject({ type: expect.any(String), title: expect.any(String), status: response.status, detail: expect.any(String), code: expect.any(String) });
  }
}

/** A raw HTTP request (URLs and headers fetch would refuse or normalise). */
function rawRequest(url: string, path: string, headers: Record<string, string>): Promise<{ status: number; contentType: string; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const request = httpRequest({ host: target.hostname, port: target.port, path, method: 'GET', headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, contentType: String(response.headers['content-type'] ?? ''), body }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe.each(backends())('hardening on %s', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;
  let openai: OpenAiCompatibleFake;
  let operations: Operation[];
  let aliceKey: string;
  let bobKey: string;
  const alice = { character: '', memory: '', conversation: '', providerKey: '', apiKey: '', image: '', media: '' };
  const asService = (externalId: string, headers: Record<string, string> = {}) => ({ key: server.internalKey, headers: { 'x-user-id': externalId, ...headers } });

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({ validKeys: [OPENROUTER_KEY] });
    openai = await startOpenAiFake({ validKeys: ['openai-platform'] });
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_API_KEY: OPENROUTER_KEY,
      MEMORY_FORMATION_DELAY_MS: '600000',
      MAX_CHARACTERS_PER_USER: '3',
      MAX_MESSAGE_CHARS: '2000',
      MAX_PROMPT_CHARS: '5000',
      // Images through an OpenAI fake, so Alice owns an image and its stored bytes (media).
      OPENAI_BASE_URL: openai.url,
      OPENAI_API_KEY: 'openai-platform',
      RUN_WORKERS_IN_PROCESS: 'true',
      IMAGE_POLL_INTERVAL_MS: '20',
    });
    aliceKey = (await server.request('POST', '/v1/keys', { body: { name: 'alice', role: 'user' }, headers: { 'x-user-id': 'h-alice' } })).body.key;
    bobKey = (await server.request('POST', '/v1/keys', { body: { name: 'bob', role: 'user' }, headers: { 'x-user-id': 'h-bob' } })).body.key;

    // Alice's objects, one of each kind.
    const character = await server.request('POST', '/v1/characters', { key: aliceKey, body: { name: 'Alice Private', visibility: 'private' } });
    expect(character.status).toBe(201);
    alice.character = character.body.id;
    const memory = await server.request('POST', `/v1/characters/${alice.character}/memories`, { key: aliceKey, body: { content: 'Alice keeps bees.', scope: 'user' } });
    expect(memory.status).toBe(201);
    alice.memory = memory.body.id;
    const chat = await server.request('POST', `/v1/characters/${alice.character}/chat`, { key: aliceKey, body: { content: 'hello there' } });
    expect(chat.status).toBe(200);
    alice.conversation = chat.body.conversation_id;
    const providerKey = await server.request('POST', '/v1/me/provider-keys', { key: aliceKey, body: { provider: 'openrouter', key: OPENROUTER_KEY } });
    expect(providerKey.status).toBe(201);
    alice.providerKey = providerKey.body.id;
    const apiKey = await server.request('POST', '/v1/keys', { key: aliceKey, body: { name: 'alice second', role: 'user' } });
    expect(apiKey.status).toBe(201);
    alice.apiKey = apiKey.body.id;
    const image = await server.request('POST', '/v1/images/generations', { key: aliceKey, body: { prompt: 'a beehive', provider: 'openai', model: 'dall-e-3' } });
    expect(image.status, image.text).toBe(200);
    alice.image = image.body.images[0].id;
    alice.media = /\/v1\/media\/([^/?]+)/.exec(String(image.body.images[0].url))![1]!;

    const document = await server.request('GET', '/openapi.json');
    operations = operationsOf(document.body);
  }, 180_000);

  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
    await openai?.close();
  });

  /** The id of Alice's object a path's {id} names, by the path's resource; undefined for routes this test does not know yet. */
  const aliceIdFor = (path: string): string | undefined => {
    if (path.startsWith('/v1/characters/{id}')) return alice.character;
    if (path.startsWith('/v1/memories/{id}')) return alice.memory;
    if (path.startsWith('/v1/conversations/{id}')) return alice.conversation;
    if (path.startsWith('/v1/me/provider-keys/{id}')) return alice.providerKey;
    if (path.startsWith('/v1/keys/{id}')) return alice.apiKey;
    if (path.startsWith('/v1/images/{id}')) return alice.image;
    if (path.startsWith('/v1/media/{id}')) return alice.media;
    return undefined;
  };

  /** A body that passes validation, so that authorization (not validation) decides the answer. */
  const validBody = (operation: Operation): unknown => {
    if (operation.path.endsWith('/chat')) return { content: 'hi' };
    if (operation.path === '/v1/characters/{id}' && operation.method === 'PATCH') return { name: 'Taken Over' };
    if (operation.path === '/v1/memories/{id}') return { content: 'changed' };
    if (operation.path === '/v1/me/provider-keys/{id}') return { name: 'renamed' };
    if (operation.path === '/v1/images/{id}' && operation.method === 'PATCH') return { favorite: true, title: 'taken' };
    if (operation.path.endsWith('/memories/search')) return { query: 'bees' };
    if (operation.path.endsWith('/memories') && operation.method === 'POST') return { content: 'x', scope: 'user' };
    return operation.bodySchema ? exampleOf(operation.bodySchema) : undefined;
  };

  it('walks every id-bearing route as another user (user key, and service key with X-User-Id): 404, and nothing changes', async () => {
    const idRoutes = operations.filter((operation) => operation.pathParams.length > 0 && !operation.path.startsWith('/v1/admin/') && operation.path !== '/v1/keys/{id}');
    expect(idRoutes.length).toBeGreaterThan(10);
    // Deletes last, so every other route still finds Alice's objects.
    idRoutes.sort((left, right) => Number(left.method === 'DELETE') - Number(right.method === 'DELETE'));
    const actors = [{ name: 'bob user key', options: { key: bobKey } }, { name: 'service as bob', options: asService('h-bob') }];
    const allIds = Object.values(alice);
    const failures: string[] = [];
    for (const operation of idRoutes) {
      const known = aliceIdFor(operation.path);
      for (const id of known ? [known] : allIds) {
        const url = fillPath(operation.path, Object.fromEntries(operation.pathParams.map((name) => [name, id])));
        for (const actor of actors) {
          const response = await server.request(operation.method, url, { ...actor.options, body: ['GET', 'DELETE'].includes(operation.method) ? undefined : validBody(operation) });
          // A route a user key may not use at all (service/admin only) is a 403 whatever the id: that reveals nothing.
          const refusedByLevel = response.status === 403 && /needs (a service or admin|an admin) key/.test(String(response.body?.detail));
          if (response.status !== 404 && !refusedByLevel) failures.push(`${operation.method} ${url} as ${actor.name}: ${response.status} ${response.text.slice(0, 160)}`);
        }
      }
    }
    // An API key of another user: revoking it is a 404 too (a user key may only manage its own).
    for (const actor of actors) {
      const response = await server.request('DELETE', `/v1/keys/${alice.apiKey}`, actor.options);
      if (response.status !== 404) failures.push(`DELETE /v1/keys/{id} as ${actor.name}: ${response.status}`);
    }
    expect(failures).toEqual([]);

    // Alice's objects are untouched.
    expect((await server.request('GET', `/v1/characters/${alice.character}`, { key: aliceKey })).body.name).toBe('Alice Private');
    expect((await server.request('GET', `/v1/conversations/${alice.conversation}/messages`, { key: aliceKey })).status).toBe(200);
    expect((await server.request('GET', `/v1/me/provider-keys/${alice.providerKey}`, { key: aliceKey })).status).toBe(200);
    const memories = await server.request('GET', `/v1/characters/${alice.character}/memories`, { key: aliceKey });
    expect(memories.body.data.map((row: { id: string }) => row.id)).toContain(alice.memory);
    expect((await server.request('GET', `/v1/images/${alice.image}`, { key: aliceKey })).body.title ?? null).toBeNull();
    expect((await server.request('GET', `/v1/media/${alice.media}`, { key: aliceKey })).status).toBe(200);
  }, 120_000);

  it('sends malformed input to every operation in /openapi.json: never a 5xx, always a contract-shaped error', async () => {
    const failures: string[] = [];
    const requests: Array<{ operation: Operation; method: string; url: string; body?: unknown; key?: string | null; headers?: Record<string, string>; what: string }> = [];
    const nested = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const oddIds = ['%00', 'a%00b', '%ed%a0%80', '..%2f..%2fetc', `${'9'.repeat(40)}`, '-1', randomUUID()];
    for (const operation of operations) {
      if (operation.path.startsWith('/docs')) continue;
      const base = Object.fromEntries(operation.pathParams.map((name) => [name, aliceIdFor(operation.path) ?? randomUUID()]));
      const url = fillPath(operation.path, base);
      const body = validBody(operation);
      const add = (what: string, extra: { url?: string; body?: unknown; key?: string | null; headers?: Record<string, string> }) =>
        requests.push({ operation, method: operation.method, url: extra.url ?? url, body: 'body' in extra ? extra.body : body, key: extra.key, headers: extra.headers ?? { 'x-user-id': 'h-fuzz' }, what });
      for (const id of operation.pathParams.length > 0 ? oddIds : []) add(`path id ${id}`, { url: fillPath(operation.path, Object.fromEntries(operation.pathParams.map((name) => [name, id]))) });
      for (const parameter of operation.queryParams) {
        for (const value of ['%00', '%ed%a0%80', '-1', '1e308', '99999999999999999999', 'garbage']) add(`query ${parameter.name}=${value}`, { url: `${url}?${parameter.name}=${value}` });
      }
      if (operation.bodyType === 'application/json' || (operation.bodySchema && operation.method !== 'GET')) {
        for (const path of stringPaths(body)) {
          add(`NUL in body.${path.join('.')}`, { body: replaceAt(body, path, 'a\u0000b') });
          add(`lone surrogate in body.${path.join('.')}`, { body: replaceAt(body, path, 'a\ud800b') });
          add(`number for body.${path.join('.')}`, { body: replaceAt(body, path, 1e308) });
        }
        const members = operation.bodySchema?.properties ? Object.keys(operation.bodySchema.properties) : [];
        for (const member of members) {
          add(`NUL in body.${member}`, { body: { ...(body as object), [member]: '\u0000' } });
          add(`huge number in body.${member}`, { body: { ...(body as object), [member]: 1e308 } });
          add(`negative number in body.${member}`, { body: { ...(body as object), [member]: -1 } });
          add(`object in body.${member}`, { body: { ...(body as object), [member]: { nested: ['\ud800'] } } });
        }
        add('NUL in a member name', { body: { ...(body as object), 'a\u0000b': 1 } });
        add('deep nesting', { body: JSON.stringify({ ...(body as object), extra: '__nested__' }).replace('"__nested__"', nested) });
        add('deeply nested body', { body: nested });
        add('body null', { body: 'null' });
        add('body a string', { body: '"\\u0000"' });
        add('body not JSON', { body: '{"a":' });
      }
      if (operation.auth) {
        add('garbage token', { key: 'anima_sk_zzzzzzzz_' + 'z'.repeat(40), headers: {} });
        add('long garbage token', { key: 'x'.repeat(6000), headers: {} });
        add('non-ASCII-safe token', { key: '%00%ff', headers: {} });
      }
      if (operation.method === 'POST') add('Idempotency-Key too long', { headers: { 'x-user-id': 'h-fuzz', 'idempotency-key': 'k'.repeat(300) } });
      add('X-User-Id too long', { headers: { 'x-user-id': 'u'.repeat(300) } });
      add('reserved X-User-Id', { headers: { 'x-user-id': 'anima:admin' } });
    }
    // A few at a time: quick, without starving the server.
    for (let start = 0; start < requests.length; start += 8) {
      await Promise.all(
        requests.slice(start, start + 8).map(async (entry) => {
          const response = await server.request(entry.method, entry.url, {
            key: entry.key === undefined ? server.internalKey : entry.key,
            headers: entry.headers,
            // fetch cannot send a body with GET/HEAD; such variants go without one.
            ...(entry.body === undefined || ['GET', 'HEAD'].includes(entry.method) ? {} : { body: entry.body }),
          });
          const what = `${entry.method} ${entry.url.slice(0, 120)} (${entry.what})`;
          // A feature the operator did not configure answers 503 naming what to set (the market without Stripe): by design.
          const notConfigured = response.status === 503 && response.body?.code === 'market_unavailable';
          if (response.status >= 500 && !notConfigured) failures.push(`${what}: ${response.status} ${response.text.slice(0, 200)}`);
          else {
            try {
              expectContractError(response, entry.operation.path, what);
            } catch (error) {
              failures.push(`${what}: ${response.status} not contract-shaped: ${(error as Error).message.slice(0, 200)}`);
            }
          }
        }),
      );
    }
    expect(failures).toEqual([]);
    expect(requests.length).toBeGreaterThan(300);
    // No error log line carries SQL parameters or the stack of a 500.
    expect(server.logs.filter((line) => line.includes('"level":50'))).toEqual([]);
  }, 300_000);

  it('answers NUL, lone surrogates and deep nesting with 422 naming the field, on REST and on the OpenAI route', async () => {
    const nul = await server.request('POST', '/v1/characters', { key: aliceKey, body: { name: 'Nul\u0000Name' } });
    expect(nul.status).toBe(422);
    expect(nul.body).toMatchObject({ code: 'validation_failed', field: 'body.name' });
    const surrogate = await server.request('POST', '/v1/characters', { key: aliceKey, body: { name: 'ok', card: { notes: 'x\ud800' } } });
    expect(surrogate.status).toBe(422);
    expect(surrogate.body.field).toBe('body.card.notes');
    const openai = await server.request('POST', '/v1/chat/completions', { key: aliceKey, body: { model: 'character/x', messages: [{ role: 'user', content: 'a\u0000' }] } });
    expect(openai.status).toBe(422);
    expect(openai.body.error).toMatchObject({ code: 'validation_failed', param: 'body.messages.0.content' });
    const query = await server.request('GET', '/v1/characters?cursor=%00', { key: aliceKey });
    expect(query.status).toBe(422);
    expect(query.body.field).toBe('query.cursor');
    const param = await server.request('GET', '/v1/characters/a%00b', { key: aliceKey });
    expect(param.status).toBe(422);
    expect(param.body.field).toBe('params.id');
    const deep = await server.request('POST', '/v1/characters', { key: aliceKey, body: `{"name":"d","card":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}` });
    expect(deep.status).toBe(422);
    expect(deep.body.field).toBe('body');
  });

  it('answers router and parser errors as problem+json: bad percent-encoding, an over-long path parameter, oversized headers', async () => {
    const badUrl = await rawRequest(server.url, '/v1/characters/%ff', { authorization: `Bearer ${aliceKey}` });
    expect(badUrl.status).toBe(400);
    expect(badUrl.contentType).toContain('application/problem+json');
    expect(JSON.parse(badUrl.body)).toMatchObject({ status: 400, code: 'bad_url' });
    const longParam = await rawRequest(server.url, `/v1/characters/${'a'.repeat(150)}`, { authorization: `Bearer ${aliceKey}` });
    expect(longParam.status).toBe(414);
    expect(longParam.contentType).toContain('application/problem+json');
    const longOnOpenAi = await rawRequest(server.url, `/v1/models/${'a'.repeat(150)}`, { authorization: `Bearer ${aliceKey}` });
    expect(longOnOpenAi.status).toBeLessThan(500);
    if (longOnOpenAi.status === 414) expect(JSON.parse(longOnOpenAi.body).error).toMatchObject({ code: 'uri_too_long' });
    const hugeHeaders = await rawRequest(server.url, '/health', { 'x-padding': 'p'.repeat(20_000) });
    expect(hugeHeaders.status).toBe(431);
    expect(hugeHeaders.contentType).toContain('application/problem+json');
    expect(JSON.parse(hugeHeaders.body)).toMatchObject({ status: 431, code: 'headers_too_large' });
  });

  it('never lets a user key join a channel or server; a channel member lists only what was said since they joined', async () => {
    // Alice (through the bot) chats in a shared channel of a public character.
    const shared = await server.request('POST', '/v1/characters', { ...asService('h-alice'), body: { name: 'Channel Host', visibility: 'public' } });
    expect(shared.status).toBe(201);
    const place = { 'x-channel-id': 'chan-1', 'x-guild-id': 'guild-1' };
    const first = await server.request('POST', `/v1/characters/${shared.body.id}/chat`, { ...asService('h-alice', place), body: { content: 'alice secret plan' } });
    expect(first.status).toBe(200);
    const conversationId = first.body.conversation_id;

    // Bob's user key naming that channel (header or body) is refused: it cannot prove membership.
    const joined = await server.request('POST', `/v1/characters/${shared.body.id}/chat`, { key: bobKey, headers: place, body: { content: 'let me in' } });
    expect(joined.status).toBe(403);
    const viaBody = await server.request('POST', `/v1/characters/${shared.body.id}/chat`, { key: bobKey, body: { content: 'let me in', channel_id: 'chan-1', guild_id: 'guild-1' } });
    expect(viaBody.status).toBe(403);
    const viaOpenAi = await server.request('POST', '/v1/chat/completions', { key: bobKey, headers: place, body: { model: `character/${shared.body.slug}`, messages: [{ role: 'user', content: 'let me in' }] } });
    expect(viaOpenAi.status).toBe(403);
    expect(viaOpenAi.body.error.code).toBe('forbidden');
    expect((await server.request('GET', `/v1/conversations/${conversationId}/messages`, { key: bobKey })).status).toBe(404);

    // The bot vouches for Bob: he joins, and sees what was said from his first message on, not Alice's earlier plan.
    const bobSpeaks = await server.request('POST', `/v1/characters/${shared.body.id}/chat`, { ...asService('h-bob', place), body: { content: 'hi all' } });
    expect(bobSpeaks.status).toBe(200);
    expect(bobSpeaks.body.conversation_id).toBe(conversationId);
    const bobView = await server.request('GET', `/v1/conversations/${conversationId}/messages`, asService('h-bob'));
    expect(bobView.status).toBe(200);
    const texts = bobView.body.data.map((message: { content: string }) => message.content);
    expect(texts).toContain('hi all');
    expect(texts).not.toContain('alice secret plan');
    const aliceView = await server.request('GET', `/v1/conversations/${conversationId}/messages`, asService('h-alice'));
    expect(aliceView.body.data.map((message: { content: string }) => message.content)).toEqual(expect.arrayContaining(['alice secret plan', 'hi all']));
  });

  it('lets only service and admin keys publish characters, and caps characters per user', async () => {
    const published = await server.request('POST', '/v1/characters', { key: bobKey, body: { name: 'Official Support', visibility: 'public' } });
    expect(published.status).toBe(403);
    expect(published.body.field).toBe('visibility');
    const own = await server.request('POST', '/v1/characters', { key: bobKey, body: { name: 'Bob One' } });
    expect(own.status).toBe(201);
    // A user's character starts private (public is the default only for service and admin keys).
    expect(own.body.visibility).toBe('private');
    expect((await server.request('PATCH', `/v1/characters/${own.body.id}`, { key: bobKey, body: { visibility: 'public' } })).status).toBe(403);
    const approved = await server.request('PATCH', `/v1/characters/${own.body.id}`, { body: { visibility: 'public' } });
    expect(approved.status).toBe(200);
    expect(approved.body.visibility).toBe('public');
    // MAX_CHARACTERS_PER_USER=3: Bob has one; two more, then 403 limit_reached. A quota on the user overrides the default.
    expect((await server.request('POST', '/v1/characters', { key: bobKey, body: { name: 'Bob Two' } })).status).toBe(201);
    expect((await server.request('POST', '/v1/characters', { key: bobKey, body: { name: 'Bob Three' } })).status).toBe(201);
    const capped = await server.request('POST', '/v1/characters', { key: bobKey, body: { name: 'Bob Four' } });
    expect(capped.status).toBe(403);
    expect(capped.body).toMatchObject({ code: 'limit_reached', limit: 3 });
    expect((await server.request('PATCH', '/v1/admin/users/h-bob', { body: { quotas: { max_characters: 4 } } })).status).toBe(200);
    expect((await server.request('POST', '/v1/characters', { key: bobKey, body: { name: 'Bob Four' } })).status).toBe(201);
  });

  it('acts as the key\'s own user for a service key without X-User-Id (Shapes.inc bots), and chats as that user', async () => {
    const host = await server.request('POST', '/v1/characters', { key: server.internalKey, body: { name: 'Shapes Bot', visibility: 'private' } });
    expect(host.status).toBe(201);
    const me = await server.request('GET', '/v1/me', { key: server.internalKey });
    expect(me.status).toBe(200);
    expect(host.body.owner_user_id).toBe(me.body.id);
    const answer = await server.request('POST', '/v1/chat/completions', { key: server.internalKey, body: { model: `shapesinc/${host.body.slug}`, messages: [{ role: 'user', content: 'hello' }] } });
    expect(answer.status).toBe(200);
    // Users the bot acts for may talk to its own private characters, but not change them.
    const asUser = await server.request('POST', `/v1/characters/${host.body.id}/chat`, { ...asService('h-bob'), body: { content: 'hello bot' } });
    expect(asUser.status).toBe(200);
    expect((await server.request('PATCH', `/v1/characters/${host.body.id}`, { ...asService('h-bob'), body: { name: 'Mine' } })).status).toBe(403);
  });

  it('caps message and prompt sizes on both chat routes with 413 naming the field', async () => {
    const bot = await server.request('POST', `/v1/characters/${alice.character}/chat`, { key: aliceKey, body: { content: 'm'.repeat(2001) } });
    expect(bot.status).toBe(413);
    expect(bot.body).toMatchObject({ code: 'payload_too_large', field: 'content', limit: 2000 });
    const openai = await server.request('POST', '/v1/chat/completions', {
      key: aliceKey,
      body: { model: `character/${(await server.request('GET', `/v1/characters/${alice.character}`, { key: aliceKey })).body.slug}`, messages: [{ role: 'system', content: 's'.repeat(4000) }, { role: 'user', content: 'u'.repeat(1500) }] },
    });
    expect(openai.status).toBe(413);
    expect(openai.body.error).toMatchObject({ code: 'payload_too_large', param: 'messages' });
  });
});
