import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conversations, memories, messages, usageEvents } from '../../src/infra/db/schema.js';
import { startOpenRouterFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * Formation end to end through the container: the chat engine's messages are written as it writes
 * them, `rememberExchange` queues the job, and a later conversation of the same user (another
 * channel) recalls the fact; another user never does. The model is the OpenRouter fake.
 */
describe.each(backends())('memory formation (%s)', (backend) => {
  let server: TestServer;
  let fake: OpenAiCompatibleFake;
  let characterId: string;
  let alice: string;
  let bob: string;
  let clock = Date.now() - 3_600_000;
  /** What the fake model answers: a function of the formation prompt. */
  let modelAnswer: (prompt: string) => string = () => '{"operations":[]}';

  beforeAll(async () => {
    fake = await startOpenRouterFake({
      validKeys: ['platform-openrouter-key'],
      reply: (body: { messages?: Array<{ content?: unknown }> }) => {
        const content = body.messages?.at(-1)?.content;
        return modelAnswer(typeof content === 'string' ? content : JSON.stringify(content ?? ''));
      },
    });
    server = await startTestServer(backend, {
      OPENROUTER_BASE_URL: fake.url,
      OPENROUTER_API_KEY: 'platform-openrouter-key',
      MEMORY_FORMATION_DELAY_MS: '0',
      RUN_WORKERS_IN_PROCESS: 'true',
    });
    const { characters, identity } = server.container;
    characterId = (await characters.service.create({ name: 'Former' }, { userId: null })).id;
    alice = (await identity.service.registerUser('form-alice', 'alice')).user.id;
    bob = (await identity.service.registerUser('form-bob', 'bob')).user.id;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await fake?.close();
  });

  /** Writes one exchange as the chat engine does and hands it to memory. */
  async function exchange(userId: string, place: { guildId?: string; channelId: string }, userText: string, reply: string, provider: 'openrouter' | undefined) {
    const { db, memory } = server.container;
    const placeKey = place.guildId ? `channel:${place.guildId}:${place.channelId}` : `dm:${userId}`;
    let [conversation] = await db.select().from(conversations).where(and(eq(conversations.characterId, characterId), eq(conversations.placeKey, placeKey)));
    conversation ??= (
      await db
        .insert(conversations)
        .values({ characterId, userId: place.guildId ? null : userId, guildId: place.guildId ?? null, channelId: place.channelId, placeKey })
        .returning()
    )[0]!;
    clock += 1000;
    const [userMessage] = await db.insert(messages).values({ conversationId: conversation.id, role: 'user', speakerUserId: userId, content: userText, createdAt: new Date(clock) }).returning();
    clock += 1000;
    const [assistantMessage] = await db.insert(messages).values({ conversationId: conversation.id, role: 'assistant', content: reply, createdAt: new Date(clock) }).returning();
    await memory.service.rememberExchange({
      characterId,
      userId,
      guildId: place.guildId,
      channelId: place.channelId,
      conversationId: conversation.id,
      userMessageId: userMessage!.id,
      assistantMessageId: assistantMessage!.id,
      provider: provider ?? undefined,
      chatModel: 'openai/gpt-4o-mini',
    });
    await server.container.queue.whenIdle(20_000);
    return conversation.id;
  }

  const userMemories = async (userId: string) =>
    server.container.db.select().from(memories).where(and(eq(memories.characterId, characterId), eq(memories.userId, userId)));

  it('extracts facts with one model call, records its usage, and a later conversation elsewhere recalls them', async () => {
    modelAnswer = () => 'Sure! {"operations":[{"op":"add","scope":"user","content":"The user\'s favourite colour is teal.","importance":0.7},{"op":"add","scope":"core","content":"I love teal too.","importance":0.9}]}';
    const before = fake.requestsTo('/chat/completions').length;
    await exchange(alice, { channelId: 'dm' }, 'My favourite colour is teal, by the way.', 'Teal is lovely!', 'openrouter');
    expect(fake.requestsTo('/chat/completions').length - before).toBe(1);

    const stored = await userMemories(alice);
    expect(stored.map((row) => row.content).sort()).toEqual(['I love teal too.', 'The user\'s favourite colour is teal.']);
    // The model asked for a core memory; formation never writes core (it would reach every user).
    expect(stored.every((row) => row.scope === 'user')).toBe(true);
    expect(stored[0]!.sourceMessageIds.length).toBe(2);

    const usage = await server.container.db.select().from(usageEvents).where(and(eq(usageEvents.userId, alice), eq(usageEvents.service, 'memory')));
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ provider: 'openrouter', paidBy: 'platform' });
    expect(usage[0]!.promptTokens).toBeGreaterThan(0);

    // Another day, another place: a server channel. The fact reaches Alice's prompt, not Bob's.
    const later = await server.container.memory.service.recall({ characterId, userId: alice, guildId: 'guild-9', channelId: 'general' }, 'Do you remember my favourite colour?');
    expect(later.promptSection).toContain('[about you] The user\'s favourite colour is teal.');
    const other = await server.container.memory.service.recall({ characterId, userId: bob, guildId: 'guild-9', channelId: 'general' }, 'Do you remember my favourite colour?');
    expect(other.promptSection).not.toContain('teal');
  });

  it('updates and deletes existing memories the model was shown, and nothing else', async () => {
    const bobMemory = await server.container.memory.service.create({ characterId, scope: 'user', userId: bob, guildId: null, content: 'The user\'s favourite colour is red.' });
    let prompt = '';
    modelAnswer = (text) => {
      prompt = text;
      const teal = /(m\d+) \[user\] The user's favourite colour is teal\./.exec(text)?.[1];
      const love = /(m\d+) \[user\] I love teal too\./.exec(text)?.[1];
      return JSON.stringify({
        operations: [
          { op: 'update', id: teal, content: 'The user\'s favourite colour is now orange.', importance: 0.8 },
          { op: 'delete', id: love },
          { op: 'delete', id: bobMemory.id },
          { op: 'update', id: 'm99', content: 'nonsense' },
        ],
      });
    };
    await exchange(alice, { channelId: 'dm' }, 'Actually, my favourite colour is orange now, not teal.', 'Orange it is.', 'openrouter');
    expect(prompt).toContain('Existing memories:');
    expect(prompt).not.toContain('red');
    const stored = await userMemories(alice);
    expect(stored.map((row) => row.content)).toEqual(['The user\'s favourite colour is now orange.']);
    expect(stored[0]!.importance).toBeCloseTo(0.8);
    expect(await server.container.memory.service.find(bobMemory.id)).toBeDefined();
  });

  it('stores a compact summary when the model answers no usable JSON, and when there is no key', async () => {
    modelAnswer = () => 'I cannot do JSON today.';
    await exchange(bob, { channelId: 'dm' }, 'I just adopted a greyhound called Comet.', 'Congratulations on Comet!', 'openrouter');
    await exchange(bob, { guildId: 'guild-9', channelId: 'general' }, 'My sister Jenna is visiting from Oslo next week.', 'Have fun with Jenna!', undefined);
    const contents = (await userMemories(bob)).map((row) => row.content);
    expect(contents.some((content) => content.includes('I just adopted a greyhound called Comet.'))).toBe(true);
    expect(contents.some((content) => content.includes('Jenna is visiting from Oslo'))).toBe(true);
    const recalled = await server.container.memory.service.recall({ characterId, userId: bob, guildId: undefined, channelId: 'dm' }, 'what is the name of my greyhound?');
    expect(recalled.promptSection).toContain('Comet');
    const aliceView = await server.container.memory.service.recall({ characterId, userId: alice, guildId: 'guild-9', channelId: 'general' }, 'greyhound Comet Jenna Oslo');
    expect(aliceView.promptSection).not.toMatch(/Comet|Jenna/);
  });

  it('forms group memories only in a guild, and they reach other members of that guild only', async () => {
    modelAnswer = () => '{"operations":[{"op":"add","scope":"group","content":"This server holds a book club every Thursday.","importance":0.6}]}';
    await exchange(alice, { guildId: 'guild-books', channelId: 'club' }, 'Our server has a book club every Thursday!', 'Sounds fun.', 'openrouter');
    const member = await server.container.memory.service.recall({ characterId, userId: bob, guildId: 'guild-books', channelId: 'club' }, 'when is the book club?');
    expect(member.promptSection).toContain('[about this server] This server holds a book club every Thursday.');
    const outsider = await server.container.memory.service.recall({ characterId, userId: bob, guildId: 'guild-other', channelId: 'x' }, 'when is the book club?');
    expect(outsider.promptSection).not.toContain('book club');
    const direct = await server.container.memory.service.recall({ characterId, userId: bob, guildId: undefined, channelId: 'dm' }, 'when is the book club?');
    expect(direct.promptSection).not.toContain('book club');

    // The same answer in a DM cannot make a group memory: it becomes the user's own.
    await exchange(bob, { channelId: 'dm' }, 'We have a book club on Thursdays.', 'Nice.', 'openrouter');
    const bobs = await userMemories(bob);
    expect(bobs.some((row) => row.scope === 'user' && row.content === 'This server holds a book club every Thursday.')).toBe(true);
  });
});
