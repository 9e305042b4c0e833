import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { childCommand, childEnvironment } from '../helpers/child-server.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

type ChatBody = { messages?: Array<{ role: string; content?: unknown }> };
const isFormationCall = (body: ChatBody) => JSON.stringify(body.messages?.[0]?.content ?? '').includes('Answer with JSON only');
const promptText = (body: ChatBody) => (body.messages ?? []).map((message) => (typeof message.content === 'string' ? message.content : JSON.stringify(message.content))).join('\n');

/** Starts `npm run worker`'s entry as its own process and waits until it consumes jobs. */
function startWorker(env: Record<string, string>): Promise<ChildProcess> {
  const [command, args] = childCommand('src/worker.ts');
  const child = spawn(command, args, { env: childEnvironment(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start: ${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('worker consuming jobs')) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${output}`)));
  });
}

/**
 * The memory issue's end-to-end proof, over HTTP only: a fact told in one conversation (a DM) is
 * formed into memory in the background and reaches the prompt of a later conversation of the same
 * user in another place (a server channel), and never another user's prompt there. On PostgreSQL +
 * Redis the background job runs in a separate worker process (`npm run worker`), not in the server.
 */
describe.each(backends())('memory through chat, over HTTP (%s)', (backend) => {
  let server: TestServer;
  let fake: OpenAiCompatibleFake;
  let worker: ChildProcess | undefined;
  let slug: string;
  let characterId: string;

  beforeAll(async () => {
    fake = await startOpenRouterFake({
      validKeys: ['platform-key'],
      reply: (body: ChatBody) => {
        if (!isFormationCall(body)) return 'Noted!';
        return promptText(body).includes('ferret')
          ? JSON.stringify({ operations: [{ op: 'add', scope: 'user', content: 'The user has a ferret named Pico.', importance: 0.8 }] })
          : '{"operations":[]}';
      },
    });
    const env = {
      OPENROUTER_BASE_URL: fake.url,
      OPENROUTER_API_KEY: 'platform-key',
      MEMORY_FORMATION_DELAY_MS: '0',
      RUN_WORKERS_IN_PROCESS: backend === 'postgres' ? 'false' : 'true',
    };
    server = await startTestServer(backend, env);
    if (backend === 'postgres') {
      const { config } = server.container;
      worker = await startWorker({
        ...env,
        DATABASE_URL: config.databaseUrl!,
        REDIS_URL: config.redisUrl!,
        REDIS_KEY_PREFIX: config.redisKeyPrefix,
        ENCRYPTION_KEY: config.encryptionKey!,
        DATA_DIR: server.dataDir,
      });
    }
    const created = await server.request('POST', '/v1/characters', { body: { name: 'Mnemosyne', slug: 'mnemosyne' } });
    expect(created.status).toBe(201);
    slug = created.body.slug;
    characterId = created.body.id;
  }, 90_000);

  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await new Promise((resolve) => worker!.once('exit', resolve));
    }
    await server?.stop();
    await fake?.close();
  });

  const chat = (userId: string, content: string, place: { guildId?: string; channelId?: string } = {}) =>
    server.request('POST', '/v1/chat/completions', {
      key: server.internalKey,
      headers: { 'x-user-id': userId, ...(place.guildId ? { 'x-guild-id': place.guildId } : {}), ...(place.channelId ? { 'x-channel-id': place.channelId } : {}) },
      body: { model: `character/${slug}`, messages: [{ role: 'user', content }] },
    });

  const lastChatPrompt = () => {
    const calls = fake.requestsTo('/chat/completions').filter((request) => !isFormationCall(request.body as ChatBody));
    return promptText(calls.at(-1)!.body as ChatBody);
  };

  it('carries a fact from a DM into a later server-channel conversation of the same user, and never to another user', async () => {
    const told = await chat('discord:alice', 'I have a ferret named Pico who steals socks.');
    expect(told.status).toBe(200);
    expect(told.body.choices[0].message.content).toBe('Noted!');

    // Formation runs in the background (in-process, or in the worker process on Redis).
    await expect
      .poll(
        async () => {
          const listed = await server.request('GET', `/v1/characters/${characterId}/memories?scope=user`, { key: server.internalKey, headers: { 'x-user-id': 'discord:alice' } });
          return (listed.body?.data ?? []).map((memory: { content: string }) => memory.content);
        },
        { timeout: 20_000, interval: 200 },
      )
      .toContain('The user has a ferret named Pico.');

    const later = await chat('discord:alice', 'What is my pet called?', { guildId: 'guild-1', channelId: 'general' });
    expect(later.status).toBe(200);
    expect(lastChatPrompt()).toContain('The user has a ferret named Pico.');

    const other = await chat('discord:bob', 'What is my pet called?', { guildId: 'guild-1', channelId: 'general' });
    expect(other.status).toBe(200);
    const bobPrompt = lastChatPrompt();
    // The shared channel's short-term history holds Alice's question, never her memory.
    expect(bobPrompt).not.toContain('ferret');
    expect(bobPrompt).not.toContain('Pico');
  });
});
