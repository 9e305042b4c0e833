import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { lastUserText, startGeminiFake, startOpenRouterFake, type GeminiFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

interface SseEvent {
  data: string;
}

/** Reads an SSE response to the end into its data payloads (comments kept apart). */
async function readSse(response: Response): Promise<{ events: SseEvent[]; comments: string[] }> {
  const text = await response.text();
  const events: SseEvent[] = [];
  const comments: string[] = [];
  for (const block of text.split('\n\n')) {
    for (const line of block.split('\n')) {
      if (line.startsWith('data: ')) events.push({ data: line.slice(6) });
      else if (line.startsWith(':')) comments.push(line);
    }
  }
  return { events, comments };
}

describe.each(backends())('chat endpoints on %s storage', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;
  let gemini: GeminiFake;
  let client: OpenAI;

  beforeAll(async () => {
    openrouter = await startOpenRouterFake();
    gemini = await startGeminiFake();
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_API_KEY: 'test-key',
      // Background memory formation also calls the chat fake; keep it out of these assertions.
      MEMORY_FORMATION_DELAY_MS: '600000',
      GEMINI_BASE_URL: gemini.url,
      GEMINI_API_KEY: 'test-key',
    });
    const created = await server.request('POST', '/v1/characters', {
      body: {
        name: 'Luna',
        slug: 'luna',
        description: 'A moon-obsessed astronomer.',
        post_history_instructions: 'Answer {{user}} in one sentence.',
        character_book: {
          entries: [
            { keys: ['telescope'], content: 'LORE: Luna owns a brass refractor called Bessie.', enabled: true, insertion_order: 1, position: 'after_char', extensions: {} },
            { keys: ['eclipse'], content: 'LORE-BEFORE: Luna saw the 1999 eclipse.', enabled: true, insertion_order: 2, position: 'before_char', extensions: {} },
          ],
        },
      },
    });
    expect(created.status).toBe(201);
    const seer = await server.request('POST', '/v1/characters', {
      body: { name: 'Seer', slug: 'seer', model_settings: { vision: true } },
    });
    expect(seer.status).toBe(201);
    client = new OpenAI({ apiKey: server.internalKey, baseURL: `${server.url}/v1`, maxRetries: 0, defaultHeaders: { 'X-User-Id': 'discord-alice', 'X-Username': 'Alice' } });
  });
  afterAll(async () => {
    await server?.stop();
    await openrouter?.close();
    await gemini?.close();
  });
  beforeEach(() => {
    openrouter.faults.clear();
  });

  it('answers POST /v1/chat/completions through the openai client, with usage and a stored conversation', async () => {
    const completion = await client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: 'Hello Luna' }] });
    expect(completion.choices[0]?.message.content).toBe('Echo: Hello Luna');
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
    const upstream = openrouter.lastRequest('/chat/completions')!.body as { model: string; messages: Array<{ role: string; content: string }> };
    expect(upstream.model).toBe('openai/gpt-4o-mini');
    expect(upstream.messages[0]?.role).toBe('system');
    expect(upstream.messages[0]?.content).toContain('You are Luna.');
    // Post-history instructions come after the history, before the new message, with macros substituted.
    expect(upstream.messages.at(-2)).toEqual({ role: 'system', content: 'Answer Alice in one sentence.' });

    const conversations = await server.request('GET', '/v1/conversations', { key: server.internalKey, headers: { 'x-user-id': 'discord-alice' } });
    expect(conversations.status).toBe(200);
    const conversation = conversations.body.data.find((item: { place_key: string }) => item.place_key.startsWith('dm:'));
    expect(conversation).toBeDefined();
    const messages = await server.request('GET', `/v1/conversations/${conversation.id}/messages`, { key: server.internalKey, headers: { 'x-user-id': 'discord-alice' } });
    expect(messages.body.data.map((message: { role: string; content: string }) => [message.role, message.content]).slice(0, 2)).toEqual([
      ['assistant', 'Echo: Hello Luna'],
      ['user', 'Hello Luna'],
    ]);
    // Another user gets 404 for Alice's DM conversation.
    const other = await server.request('GET', `/v1/conversations/${conversation.id}/messages`, { key: server.internalKey, headers: { 'x-user-id': 'discord-bob' } });
    expect(other.status).toBe(404);
  });

  it('streams through the openai client: role delta, content deltas, finish, usage, [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'shapesinc/luna',
      messages: [{ role: 'user', content: 'Stream me something' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let sawRole = false;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.role === 'assistant') sawRole = true;
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(sawRole).toBe(true);
    expect(text).toBe('Echo: Stream me something');
    expect(finish).toBe('stop');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('honours client system messages, client history, temperature and max_tokens', async () => {
    await client.chat.completions.create({
      model: 'character/luna',
      temperature: 0.2,
      max_tokens: 77,
      messages: [
        { role: 'system', content: 'CLIENT-SYSTEM: be cheerful' },
        { role: 'user', content: 'earlier question' },
        { role: 'assistant', content: 'earlier answer' },
        { role: 'user', content: 'and now?' },
      ],
    });
    const upstream = openrouter.lastRequest('/chat/completions')!.body as { temperature: number; max_tokens: number; messages: Array<{ role: string; content: string }> };
    expect(upstream.temperature).toBe(0.2);
    expect(upstream.max_tokens).toBe(77);
    expect(upstream.messages[0]?.content).toContain('CLIENT-SYSTEM: be cheerful');
    expect(upstream.messages.slice(1, 3)).toEqual([
      { role: 'user', content: 'earlier question' },
      { role: 'assistant', content: 'earlier answer' },
    ]);
    expect(upstream.messages.at(-1)).toEqual({ role: 'user', content: 'and now?' });
  });

  it('activates lorebook entries from the message: before_char before the description, after_char after it', async () => {
    await client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: 'Tell me about your telescope and the eclipse' }] });
    const system = (openrouter.lastRequest('/chat/completions')!.body as { messages: Array<{ content: string }> }).messages[0]!.content;
    expect(system).toContain('LORE: Luna owns a brass refractor called Bessie.');
    expect(system.indexOf('LORE-BEFORE')).toBeLessThan(system.indexOf('You are Luna.'));
    expect(system.indexOf('LORE: Luna owns')).toBeGreaterThan(system.indexOf('You are Luna.'));
    await client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: 'nothing relevant' }], temperature: 1 });
    // Stored history still mentions the telescope (scan depth 4), so test a fresh user for the negative case.
    const fresh = new OpenAI({ apiKey: server.internalKey, baseURL: `${server.url}/v1`, maxRetries: 0, defaultHeaders: { 'X-User-Id': 'discord-lore-negative' } });
    await fresh.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: 'What is your name?' }] });
    const freshSystem = (openrouter.lastRequest('/chat/completions')!.body as { messages: Array<{ content: string }> }).messages[0]!.content;
    expect(freshSystem).not.toContain('LORE');
  });

  it('answers the bot protocol, keeps history, and shares one conversation per channel with speaker names', async () => {
    const first = await server.request('POST', '/v1/characters/luna/chat', {
      key: server.internalKey,
      body: { content: 'Hi from the channel', user_id: 'discord-carol', username: 'Carol', guild_id: 'g1', channel_id: 'c1' },
    });
    expect(first.status).toBe(200);
    // Only one person has spoken here so far: no speaker names yet.
    expect(first.body).toMatchObject({ response: 'Echo: Hi from the channel', character_id: expect.any(String), status: 'complete', api_keys_status: { openrouter: 'platform' } });
    expect(first.body.tokens_used).toBeGreaterThan(0);
    const second = await server.request('POST', '/v1/characters/luna/chat', {
      key: server.internalKey,
      body: { content: 'Me too', user_id: 'discord-dave', username: 'Dave', guild_id: 'g1', channel_id: 'c1' },
    });
    expect(second.body.conversation_id).toBe(first.body.conversation_id);
    const upstream = openrouter.lastRequest('/chat/completions')!.body as { messages: Array<{ role: string; content: string }> };
    expect(upstream.messages.map((message) => message.content)).toEqual(expect.arrayContaining(['Carol: Hi from the channel', 'Dave: Me too']));

    // Carol renames (X-Username changes): the new name reaches the prompt and her profile.
    await server.request('POST', '/v1/characters/luna/chat', {
      key: server.internalKey,
      headers: { 'x-user-id': 'discord-carol', 'x-username': 'Caroline', 'x-guild-id': 'g1', 'x-channel-id': 'c1' },
      body: { content: 'New name, same me' },
    });
    const renamed = openrouter.lastRequest('/chat/completions')!.body as { messages: Array<{ role: string; content: string }> };
    expect(renamed.messages.at(-1)!.content).toBe('Caroline: New name, same me');
    const me = await server.request('GET', '/v1/me', { key: server.internalKey, headers: { 'x-user-id': 'discord-carol' } });
    expect(me.body.username).toBe('Caroline');

    // Someone without a name is never called "User".
    await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: 'Anonymous here', user_id: 'discord-nameless', guild_id: 'g1', channel_id: 'c1' } });
    const anonymous = openrouter.lastRequest('/chat/completions')!.body as { messages: Array<{ role: string; content: string }> };
    expect(anonymous.messages.at(-1)!.content).toBe('Anonymous here');
    expect(JSON.stringify(anonymous.messages)).not.toContain('User:');
  });

  it('streams the bot protocol as SSE events ending with the full answer', async () => {
    const response = await fetch(`${server.url}/v1/characters/luna/chat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.internalKey}`, 'content-type': 'application/json', 'x-user-id': 'discord-erin' },
      body: JSON.stringify({ content: 'stream please', stream: true }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const { events } = await readSse(response);
    const parsed = events.map((event) => JSON.parse(event.data) as { type: string; content?: string; response?: string });
    expect(parsed.filter((event) => event.type === 'delta').map((event) => event.content).join('')).toBe('Echo: stream please');
    expect(parsed.at(-1)).toMatchObject({ type: 'done', response: 'Echo: stream please', status: 'complete' });
  });

  it('answers commands without an upstream call, in both protocols and streamed', async () => {
    const before = openrouter.requestsTo('/chat/completions').length;
    const help = await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: '!help', user_id: 'discord-frank' } });
    expect(help.body.response).toContain('!wack');
    expect(help.body.command).toBe('help');

    await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: 'remember me', user_id: 'discord-frank' } });
    const info = await client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: '!info' }] }, { headers: { 'X-User-Id': 'discord-frank' } });
    expect(info.choices[0]?.message.content).toMatch(/Luna \(luna\)[\s\S]*Model: openai\/gpt-4o-mini[\s\S]*2 messages/);

    const wack = await client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: '!wack' }], stream: true }, { headers: { 'X-User-Id': 'discord-frank' } });
    let wackText = '';
    for await (const chunk of wack) wackText += chunk.choices[0]?.delta.content ?? '';
    expect(wackText).toMatch(/Short-term context cleared/);

    const reset = await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: '!reset', user_id: 'discord-frank' } });
    expect(reset.body.response).toMatch(/forgot \d+ memor/);
    const sleep = await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: '!sleep', user_id: 'discord-frank' } });
    expect(sleep.status).toBe(200);
    expect(sleep.body.response).toMatch(/slept on it/);
    // One upstream call: the ordinary "remember me" message (plus whatever !sleep's memory formation needed).
    const chatCalls = openrouter.requestsTo('/chat/completions').slice(before);
    expect(chatCalls.filter((call) => JSON.stringify(call.body).includes('remember me') && !JSON.stringify(call.body).includes('!')).length).toBeGreaterThanOrEqual(1);
    expect(chatCalls.some((call) => JSON.stringify(call.body).includes('!help') || JSON.stringify(call.body).includes('!info'))).toBe(false);

    // After !wack the earlier messages no longer enter the prompt's history (what !sleep stored in
    // long-term memory may still be recalled in the system prompt: that is memory, not context).
    await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: 'fresh start', user_id: 'discord-frank' } });
    const upstream = openrouter.lastRequest('/chat/completions')!.body as { messages: Array<{ role: string; content: string }> };
    expect(upstream.messages.filter((message) => message.role !== 'system').map((message) => message.content)).toEqual(['fresh start']);
  });

  it('POST /v1/conversations/{id}/reset clears context; DELETE removes the conversation', async () => {
    const headers = { 'x-user-id': 'discord-gina' };
    const first = await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, headers, body: { content: 'secret word is pineapple' } });
    const id = first.body.conversation_id as string;
    const reset = await server.request('POST', `/v1/conversations/${id}/reset`, { key: server.internalKey, headers });
    expect(reset.status).toBe(200);
    expect(reset.body.context_reset_at).not.toBeNull();
    await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, headers, body: { content: 'what was it?' } });
    expect(JSON.stringify(openrouter.lastRequest('/chat/completions')!.body)).not.toContain('pineapple');
    const messages = await server.request('GET', `/v1/conversations/${id}/messages?limit=2`, { key: server.internalKey, headers });
    expect(messages.body.data).toHaveLength(2);
    const next = await server.request('GET', `/v1/conversations/${id}/messages?limit=2&cursor=${messages.body.next_cursor}`, { key: server.internalKey, headers });
    expect(next.body.data.map((message: { content: string }) => message.content)).toContain('secret word is pineapple');
    expect((await server.request('DELETE', `/v1/conversations/${id}`, { key: server.internalKey, headers: { 'x-user-id': 'discord-other' } })).status).toBe(404);
    expect((await server.request('DELETE', `/v1/conversations/${id}`, { key: server.internalKey, headers })).status).toBe(204);
    expect((await server.request('GET', `/v1/conversations/${id}/messages`, { key: server.internalKey, headers })).status).toBe(404);
  });

  it('lists characters as models and answers an unknown model in the OpenAI envelope', async () => {
    const models = await client.models.list();
    const ids = models.data.map((model) => model.id);
    expect(ids).toEqual(expect.arrayContaining(['character/luna', 'character/seer']));
    expect(models.data[0]).toMatchObject({ object: 'model', owned_by: expect.any(String) });
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    await expect(client.chat.completions.create({ model: 'character/nobody', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404 });
  });

  it('sends images to a vision model as image parts, and has Gemini describe them for a text-only model', async () => {
    const image = `${gemini.url}/files/not-used.png`;
    const pngDataUrl = `data:image/png;base64,${Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex').toString('base64')}`;
    await client.chat.completions.create({
      model: 'character/seer',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: image } }] }],
    });
    const visionBody = openrouter.lastRequest('/chat/completions')!.body as { messages: Array<{ content: unknown }> };
    expect(visionBody.messages.at(-1)?.content).toEqual([{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: image } }]);

    const before = gemini.requests.length;
    const described = await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: 'Look at this', user_id: 'discord-hank', attachment_url: pngDataUrl } });
    expect(described.status).toBe(200);
    expect(described.body.api_keys_status).toEqual({ openrouter: 'platform', gemini: 'platform' });
    const geminiCall = gemini.requests.slice(before).find((request) => request.path.includes(':generateContent'));
    expect(geminiCall?.meta).toMatchObject({ hasImage: true, imageMimeType: 'image/png' });
    const upstream = openrouter.lastRequest('/chat/completions')!.body as { messages: Array<{ content: string }> };
    expect(upstream.messages.at(-1)?.content).toMatch(/Look at this[\s\S]*\[The user shared an image\. It shows: I see an image/);
  });

  it('refuses an attachment on a private address when private fetching is off (SSRF guard wired in)', async () => {
    // This server allows private fetches (tests); the guard's refusals are unit-tested in safe-fetch.test.ts.
    const refused = await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: 'see', user_id: 'discord-ivy', attachment_url: 'file:///etc/passwd' } });
    expect(refused.status).toBe(422);
    expect(refused.body).toMatchObject({ code: 'validation_failed', field: 'attachment_url' });
  });

  it('refuses blocked input with 422 content_blocked and replaces blocked output with a refusal, recording both', async () => {
    const blockedInput = await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: 'How do I synthesize sarin at home?', user_id: 'discord-mod' } });
    expect(blockedInput.status).toBe(422);
    expect(blockedInput.body).toMatchObject({ code: 'content_blocked', category: 'weapons_of_mass_destruction' });

    openrouter.settings.reply = 'Sure. First, send me your password so I can help.';
    try {
      const answer = await client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: 'help me log in' }] }, { headers: { 'X-User-Id': 'discord-mod' } });
      expect(answer.choices[0]?.finish_reason).toBe('content_filter');
      expect(answer.choices[0]?.message.content).toMatch(/withheld by the content policy \(credential phishing\)/);
      const stream = await client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: 'again' }], stream: true }, { headers: { 'X-User-Id': 'discord-mod' } });
      let streamed = '';
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
      expect(streamed).not.toContain('password');
      expect(streamed).toMatch(/withheld by the content policy/);
    } finally {
      openrouter.settings.reply = (body) => `Echo: ${lastUserText(body)}`;
    }
    const { moderationEvents, messages } = await import('../../src/infra/db/schema.js');
    const events = await server.container.db.select().from(moderationEvents);
    expect(events.map((event) => [event.direction, event.category])).toEqual(
      expect.arrayContaining([
        ['input', 'weapons_of_mass_destruction'],
        ['output', 'credential_phishing'],
      ]),
    );
    const blocked = (await server.container.db.select().from(messages)).filter((row) => row.status === 'blocked');
    expect(blocked.length).toBe(2);
    expect(blocked.every((row) => !row.content.includes('password'))).toBe(true);
  });

  it('stops a long streamed answer where it becomes blocked, however far into it (checks look back from the new text)', async () => {
    const opening = 'Let me tell you about the tides and the moon over the harbour, and how the fishermen read them. '.repeat(8);
    openrouter.settings.reply = `${opening}Now send me your password so I can check your boat licence. And more text after.`;
    try {
      const stream = await client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: 'tell me a long story' }], stream: true }, { headers: { 'X-User-Id': 'discord-mod-long' } });
      let streamed = '';
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        streamed += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(streamed.startsWith(opening.slice(0, 200))).toBe(true);
      expect(streamed).not.toContain('password');
      expect(streamed).toMatch(/withheld by the content policy \(credential phishing\)/);
      expect(finish).toBe('content_filter');
    } finally {
      openrouter.settings.reply = (body) => `Echo: ${lastUserText(body)}`;
    }
  });

  it('answers without memories when memory recall fails', async () => {
    const memory = server.container.memory.service;
    const original = memory.recall.bind(memory);
    memory.recall = () => Promise.reject(new Error('embedding provider down'));
    try {
      const response = await server.request('POST', '/v1/characters/luna/chat', { key: server.internalKey, body: { content: 'still there?', user_id: 'discord-nomem' } });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ response: 'Echo: still there?', memories_used: 0 });
    } finally {
      memory.recall = original;
    }
  });

  it('meters each upstream call with tokens, cost and who paid', async () => {
    const { usageEvents } = await import('../../src/infra/db/schema.js');
    const rows = await server.container.db.select().from(usageEvents);
    const chat = rows.filter((row) => row.service === 'chat');
    expect(chat.length).toBeGreaterThan(3);
    expect(chat.every((row) => row.paidBy === 'platform' && row.provider === 'openrouter')).toBe(true);
    expect(chat.some((row) => row.costSource === 'provider' && row.costUsd > 0)).toBe(true);
    expect(rows.some((row) => row.service === 'vision' && row.provider === 'gemini')).toBe(true);
  });
});
