import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/infra/db/database.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { CONVERSATIONS_CHANGED_CHANNEL } from '../../src/modules/chat/conversation-cache.js';
import { startOpenRouterFake, type ChatRequestBody, type OpenAiCompatibleFake } from '../fakes/index.js';
import { templateKey } from '../helpers/embedded-template.js';
import { createMigratedScratchDatabase, type ScratchDatabase } from '../helpers/scratch-database.js';
import { backends, startTestServer, type Backend, type TestServer } from '../helpers/test-server.js';
import { testRedisPrefix } from '../helpers/test-redis-prefix.js';

/**
 * Chat turns read their conversation and its recent history from a per-process cache
 * (src/modules/chat/conversation-cache.ts). What a turn sends upstream must be what the database
 * holds: the same history after a restart (an empty cache), nothing from before a reset or a
 * deletion, no failed turn, and, across replicas on one database and Redis, every other replica's
 * turns, resets and erasures.
 */

type Place = { guild_id?: string; channel_id?: string };

/** The stored history a prompt carried: its user and assistant messages before the new one, as `role: text`. */
function historyOf(body: ChatRequestBody): string[] {
  const turns = (body.messages ?? []).filter((message) => message.role !== 'system');
  return turns.slice(0, -1).map((message) => `${message.role}: ${typeof message.content === 'string' ? message.content : JSON.stringify(message.content)}`);
}

/** The same server configuration across restarts and replicas: one data directory, one database, one Redis namespace. */
class Deployment {
  private readonly dataDir = mkdtempSync(path.join(tmpdir(), 'anima-convcache-'));
  private readonly redisKeyPrefix = testRedisPrefix();
  private scratch: ScratchDatabase | undefined;
  readonly servers = new Set<TestServer>();

  constructor(
    private readonly backend: Backend,
    private readonly env: () => Record<string, string>,
  ) {}

  async start(): Promise<TestServer> {
    if (this.backend === 'postgres' && !this.scratch) {
      this.scratch = await createMigratedScratchDatabase(process.env.TEST_DATABASE_URL!, templateKey(), async (url) => {
        const handle = await openDatabase({ databaseUrl: url, dataDir: tmpdir(), logger: createLogger('silent') });
        await handle.close();
      });
    }
    // On PostgreSQL the "embedded" helper path only skips making a scratch database of its own: the
    // server runs on this deployment's database and Redis, which outlive any one server.
    const server = await startTestServer('embedded', {
      ...this.env(),
      DATA_DIR: this.dataDir,
      ...(this.scratch ? { DATABASE_URL: this.scratch.url, REDIS_URL: process.env.TEST_REDIS_URL, REDIS_KEY_PREFIX: this.redisKeyPrefix } : {}),
    });
    this.servers.add(server);
    return server;
  }

  async stop(server: TestServer): Promise<void> {
    this.servers.delete(server);
    await server.stop();
  }

  async close(): Promise<void> {
    for (const server of this.servers) await server.stop().catch(() => undefined);
    this.servers.clear();
    await this.scratch?.drop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

describe.each(backends())('conversation cache on %s storage', (backend) => {
  let openrouter: OpenAiCompatibleFake;
  let deployment: Deployment;
  let server: TestServer;

  const env = () => ({
    OPENROUTER_BASE_URL: openrouter.url,
    OPENROUTER_API_KEY: 'test-key',
    // Background memory formation also calls the chat fake; keep it out of these prompts.
    MEMORY_FORMATION_DELAY_MS: '600000',
    UPSTREAM_MAX_RETRIES: '0',
  });

  beforeAll(async () => {
    openrouter = await startOpenRouterFake();
    deployment = new Deployment(backend, env);
    server = await deployment.start();
  });
  afterAll(async () => {
    await deployment?.close();
    await openrouter?.close();
  });
  beforeEach(() => {
    openrouter.faults.clear();
  });

  const createCharacter = async (on: TestServer, slug: string) => {
    const created = await on.request('POST', '/v1/characters', { body: { name: slug, slug, model_settings: { fallback_models: [] } } });
    expect(created.status, created.text).toBe(201);
  };

  /** One turn; the history of the prompt it sent upstream (undefined for a command, which sends none). */
  const say = async (on: TestServer, slug: string, user: string, content: string, place: Place = {}, extra: { stream?: boolean; expectStatus?: number } = {}) => {
    const before = openrouter.requestsTo('/chat/completions').length;
    const response = await on.request('POST', `/v1/characters/${slug}/chat`, {
      key: on.internalKey,
      body: { content, user_id: user, username: user, ...place, ...(extra.stream ? { stream: true } : {}) },
    });
    expect(response.status, response.text).toBe(extra.expectStatus ?? 200);
    const sent = openrouter.requestsTo('/chat/completions').slice(before);
    expect(sent.length).toBeLessThanOrEqual(1);
    return { response, history: sent[0] ? historyOf(sent[0].body as ChatRequestBody) : undefined };
  };

  const as = (user: string) => ({ key: server.internalKey, headers: { 'x-user-id': user } });

  it('sends the same history, in the same order, as a restarted server reads from the database', async () => {
    await createCharacter(server, 'keeper');
    const channel = { guild_id: 'g-restart', channel_id: 'c-restart' };
    await say(server, 'keeper', 'alice', 'one');
    await say(server, 'keeper', 'alice', 'two', {}, { stream: true });
    await say(server, 'keeper', 'alice', 'three');
    await say(server, 'keeper', 'alice', 'in the channel', channel);
    await say(server, 'keeper', 'bob', 'me too', channel, { stream: true });
    await say(server, 'keeper', 'alice', 'and again', channel);

    const direct = (await say(server, 'keeper', 'alice', 'probe')).history!;
    expect(direct).toEqual(['user: one', 'assistant: Echo: one', 'user: two', 'assistant: Echo: two', 'user: three', 'assistant: Echo: three']);
    const group = (await say(server, 'keeper', 'bob', 'probe', channel)).history!;
    // Two people talk there: user messages carry the speaker's name.
    expect(group).toEqual([
      'user: alice: in the channel',
      'assistant: Echo: in the channel',
      'user: bob: me too',
      'assistant: Echo: bob: me too',
      'user: alice: and again',
      'assistant: Echo: alice: and again',
    ]);

    await deployment.stop(server);
    server = await deployment.start();
    // An empty cache: both histories come from the database, and end with the probes just made.
    expect((await say(server, 'keeper', 'alice', 'probe')).history).toEqual([...direct, 'user: probe', 'assistant: Echo: probe']);
    expect((await say(server, 'keeper', 'bob', 'probe', channel)).history).toEqual([...group, 'user: bob: probe', 'assistant: Echo: bob: probe']);
  });

  it('starts afresh after !wack and after POST /v1/conversations/:id/reset', async () => {
    await createCharacter(server, 'wacky');
    await say(server, 'wacky', 'carl', 'before one');
    const { response } = await say(server, 'wacky', 'carl', 'before two');
    expect((await say(server, 'wacky', 'carl', 'remember?')).history).toHaveLength(4);

    const wacked = await say(server, 'wacky', 'carl', '!wack');
    expect(wacked.response.body.command).toBe('wack');
    expect(wacked.history).toBeUndefined();
    expect((await say(server, 'wacky', 'carl', 'after')).history).toEqual([]);
    expect((await say(server, 'wacky', 'carl', 'after two')).history).toEqual(['user: after', 'assistant: Echo: after']);

    const reset = await server.request('POST', `/v1/conversations/${response.body.conversation_id}/reset`, as('carl'));
    expect(reset.status, reset.text).toBe(200);
    expect((await say(server, 'wacky', 'carl', 'after the reset')).history).toEqual([]);
    expect((await say(server, 'wacky', 'carl', 'next')).history).toEqual(['user: after the reset', 'assistant: Echo: after the reset']);
  });

  it('keeps out the message of a turn begun before a !wack and answered after it, as the database does', async () => {
    await createCharacter(server, 'midreset');
    const channel = { guild_id: 'g-midreset', channel_id: 'c-midreset' };
    await say(server, 'midreset', 'lena', 'warm up', channel);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    openrouter.faults.once({ route: '/chat/completions', until: gate });
    const before = openrouter.requestsTo('/chat/completions').length;
    const slow = server.request('POST', '/v1/characters/midreset/chat', { key: server.internalKey, body: { content: 'slow one', user_id: 'lena', username: 'lena', ...channel } });
    await expect.poll(() => openrouter.requestsTo('/chat/completions').length, { timeout: 5000, interval: 10 }).toBe(before + 1);

    // While Lena's turn waits for its answer, Mona resets the channel and Nora talks (caching the fresh history).
    await say(server, 'midreset', 'mona', '!wack', channel);
    expect((await say(server, 'midreset', 'nora', 'fresh start', channel)).history).toEqual([]);
    open();
    const answered = await slow;
    expect(answered.status, answered.text).toBe(200);
    expect(answered.body.response).toBe('Echo: slow one');

    // Lena's message is older than the reset (left out); the answer to it is newer (kept).
    expect((await say(server, 'midreset', 'nora', 'what now?', channel)).history).toEqual(['user: fresh start', 'assistant: Echo: fresh start', 'assistant: Echo: slow one']);
  });

  it('starts a new conversation after DELETE /v1/conversations/:id', async () => {
    await createCharacter(server, 'deleter');
    const first = await say(server, 'deleter', 'dora', 'remember this');
    expect((await say(server, 'deleter', 'dora', 'and this')).history).toEqual(['user: remember this', 'assistant: Echo: remember this']);
    const deleted = await server.request('DELETE', `/v1/conversations/${first.response.body.conversation_id}`, as('dora'));
    expect(deleted.status, deleted.text).toBe(204);

    const fresh = await say(server, 'deleter', 'dora', 'hello again');
    expect(fresh.history).toEqual([]);
    expect(fresh.response.body.conversation_id).not.toBe(first.response.body.conversation_id);
    expect((await say(server, 'deleter', 'dora', 'still here')).history).toEqual(['user: hello again', 'assistant: Echo: hello again']);
  });

  it('leaves the user message of a failed turn out of later prompts (kept as failed)', async () => {
    await createCharacter(server, 'flaky');
    const first = await say(server, 'flaky', 'fred', 'works');
    openrouter.faults.failNext(1, 500, { route: '/chat/completions' });
    const failed = await say(server, 'flaky', 'fred', 'lost in the void', {}, { expectStatus: 502 });
    expect(failed.history).toEqual(['user: works', 'assistant: Echo: works']);
    expect((await say(server, 'flaky', 'fred', 'try again')).history).toEqual(['user: works', 'assistant: Echo: works']);

    const listed = await server.request('GET', `/v1/conversations/${first.response.body.conversation_id}/messages`, as('fred'));
    expect(listed.status).toBe(200);
    const lost = listed.body.data.find((message: { content: string }) => message.content === 'lost in the void');
    expect(lost).toMatchObject({ role: 'user', status: 'failed' });
  });

  it('drops an erased user’s messages from the cached history of a shared channel', async () => {
    await createCharacter(server, 'eraser');
    const channel = { guild_id: 'g-erase', channel_id: 'c-erase' };
    await say(server, 'eraser', 'gina', 'gina secret', channel);
    const cached = (await say(server, 'eraser', 'hank', 'hi all', channel)).history!;
    expect(cached.filter((line) => line.startsWith('user:'))).toEqual(['user: gina: gina secret']);

    expect((await server.request('DELETE', '/v1/me', as('gina'))).status).toBe(204);
    const after = (await say(server, 'eraser', 'hank', 'anyone?', channel)).history!;
    // Hank is alone there now: no names.
    expect(after.filter((line) => line.startsWith('user:'))).toEqual(['user: hi all']);
  });

  it('answers, into a new conversation, when the cached conversation was deleted behind the cache', async () => {
    await createCharacter(server, 'phoenix');
    const first = await say(server, 'phoenix', 'ivy', 'first life');
    const oldId: string = first.response.body.conversation_id;
    expect((await say(server, 'phoenix', 'ivy', 'cached now')).history).toEqual(['user: first life', 'assistant: Echo: first life']);
    await server.container.db.execute(sql`DELETE FROM conversations WHERE id = ${oldId}`);

    const reborn = await say(server, 'phoenix', 'ivy', 'second life');
    expect(reborn.response.body.response).toBe('Echo: second life');
    const newId: string = reborn.response.body.conversation_id;
    expect(newId).not.toBe(oldId);
    const stored = await server.request('GET', `/v1/conversations/${newId}/messages`, as('ivy'));
    expect(stored.status, stored.text).toBe(200);
    expect(stored.body.data.map((message: { role: string; content: string }) => `${message.role}: ${message.content}`)).toEqual(['assistant: Echo: second life', 'user: second life']);
    // The cache follows the new conversation: the next prompt holds exactly what it stores.
    expect((await say(server, 'phoenix', 'ivy', 'third')).history).toEqual(['user: second life', 'assistant: Echo: second life']);
  });

  describe.skipIf(backend !== 'postgres')('two replicas on one database and Redis', () => {
    let replicaA: TestServer;
    let replicaB: TestServer;
    const heardOnA: string[] = [];
    let originA: string | undefined;

    beforeAll(async () => {
      replicaA = server;
      replicaB = await deployment.start();
      expect(replicaB.container.keyValue.kind).toBe('redis');
      // Subscribed after A's own cache: Redis hands each message to A's handlers in that order, so
      // once the message is heard here, A's cache has dropped what it names.
      await replicaA.container.keyValue.events.subscribe(CONVERSATIONS_CHANGED_CHANNEL, (message) => heardOnA.push(message));
    });

    /** Waits until A has heard a report from another replica (B) after `from` ending in `what` (an id or `*`). */
    const heardFromB = async (from: number, what: string) => {
      await expect
        .poll(() => heardOnA.slice(from).some((message) => message.split(' ')[0] !== originA && message.split(' ')[1] === what), { timeout: 2000, interval: 10 })
        .toBe(true);
    };

    it('shows A the turns, the reset and the erasure made through B', async () => {
      await createCharacter(replicaA, 'relay');
      const channel = { guild_id: 'g-replicas', channel_id: 'c-replicas' };
      const onA1 = await say(replicaA, 'relay', 'jane', 'on A first', channel);
      const conversationId: string = onA1.response.body.conversation_id;
      // The first report on the channel is A's own: that is how A's origin is told from B's.
      await expect.poll(() => heardOnA.length, { timeout: 2000, interval: 10 }).toBeGreaterThan(0);
      originA = heardOnA[0]!.split(' ')[0];
      expect(heardOnA[0]).toBe(`${originA} ${conversationId}`);

      let mark = heardOnA.length;
      const onB = await say(replicaB, 'relay', 'kurt', 'on B', channel);
      // Kurt joins: from now on user messages carry their speaker's name.
      expect(onB.history).toEqual(['user: jane: on A first', 'assistant: Echo: on A first']);
      await heardFromB(mark, conversationId);
      expect((await say(replicaA, 'relay', 'jane', 'on A again', channel)).history).toEqual([
        'user: jane: on A first',
        'assistant: Echo: on A first',
        'user: kurt: on B',
        'assistant: Echo: kurt: on B',
      ]);

      // A reset through B: A's next prompt starts afresh.
      mark = heardOnA.length;
      expect((await replicaB.request('POST', `/v1/conversations/${conversationId}/reset`, { key: replicaB.internalKey, headers: { 'x-user-id': 'kurt' } })).status).toBe(200);
      await heardFromB(mark, conversationId);
      expect((await say(replicaA, 'relay', 'jane', 'after the reset', channel)).history).toEqual([]);

      // Kurt talks through B, A caches it, then Kurt erases his data through B.
      mark = heardOnA.length;
      await say(replicaB, 'relay', 'kurt', 'kurt secret', channel);
      await heardFromB(mark, conversationId);
      const cached = (await say(replicaA, 'relay', 'jane', 'still there?', channel)).history!;
      expect(cached.filter((line) => line.startsWith('user:'))).toEqual(['user: jane: after the reset', 'user: kurt: kurt secret']);
      mark = heardOnA.length;
      expect((await replicaB.request('DELETE', '/v1/me', { key: replicaB.internalKey, headers: { 'x-user-id': 'kurt' } })).status).toBe(204);
      await heardFromB(mark, '*');
      const erased = (await say(replicaA, 'relay', 'jane', 'and now?', channel)).history!;
      // Jane is alone again (no names).
      expect(erased.filter((line) => line.startsWith('user:'))).toEqual(['user: after the reset', 'user: still there?']);
    });
  });
});
