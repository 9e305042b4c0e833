import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnimaBot } from '../../src/bot/anima-bot.js';
import { loadBotConfig } from '../../src/config.js';
import { createLogger } from '../../src/infra/logging/logger.js';
import { lastUserText, silentMp3, solidPng, startElevenLabsFake, startGeminiFake, startOpenRouterFake, type ElevenLabsFake, type GeminiFake, type OpenAiCompatibleFake } from '../fakes/index.js';
import { CHANNEL_TYPES, PERMISSIONS, snowflake, startDiscordFake, type DiscordFake, type FakeMessage, type FakeUser } from '../fakes/discord/discord-fake.js';
import { backends, startTestServer, type TestServer } from '../helpers/test-server.js';

/**
 * The real discord.js Client against a loopback Discord (gateway + REST) and the real Anima server
 * with its vendor fakes: what a Discord user sees, end to end.
 */
const GUILD = snowflake();
const CATEGORY = snowflake();
const CHANNELS = {
  tavern: snowflake(),
  duo: snowflake(),
  noHooks: snowflake(),
  thread: snowflake(),
  paid: snowflake(),
  unbound: snowflake(),
  voiced: snowflake(),
};
const VOICE_NOTE_TRANSCRIPT = 'Meet me at the harbour at dawn.';
const LONG_SENTENCE = 'The lighthouse keeper counted every wave that broke against the rocks below. ';

describe.each(backends())('the Discord bot on %s storage', (backend) => {
  let server: TestServer;
  let openrouter: OpenAiCompatibleFake;
  let gemini: GeminiFake;
  let elevenlabs: ElevenLabsFake;
  let discord: DiscordFake;
  let bot: AnimaBot;
  const alice: FakeUser = { id: snowflake(), username: 'alice', global_name: 'Alice Liddell' };
  const bob: FakeUser = { id: snowflake(), username: 'bob' };

  beforeAll(async () => {
    openrouter = await startOpenRouterFake({
      reply: (body) => {
        const text = lastUserText(body);
        if (text.includes('tell me a long story')) return LONG_SENTENCE.repeat(40).trim();
        return `Echo: ${text}`;
      },
    });
    gemini = await startGeminiFake({ reply: (_body, info) => (info.hasImage ? `a ${info.imageMimeType} picture of a red square` : `Echo: ${info.userText}`) });
    // Speech and speech-to-text (Scribe: no OpenAI key here, so transcription falls to ElevenLabs by key availability).
    elevenlabs = await startElevenLabsFake({ transcript: VOICE_NOTE_TRANSCRIPT });
    server = await startTestServer(backend, {
      ELEVENLABS_API_KEY: 'test-key',
      ELEVENLABS_BASE_URL: elevenlabs.url,
      OPENROUTER_BASE_URL: openrouter.url,
      OPENROUTER_API_KEY: 'test-key',
      GEMINI_BASE_URL: gemini.url,
      GEMINI_API_KEY: 'test-key',
      MEMORY_FORMATION_DELAY_MS: '600000',
      SETUP_URL: 'https://anima.example/setup',
    });
    discord = await startDiscordFake({
      guilds: [
        {
          id: GUILD,
          name: 'Test Server',
          channels: [
            { id: CATEGORY, name: 'Roleplay', type: CHANNEL_TYPES.GuildCategory },
            { id: CHANNELS.tavern, name: 'tavern', type: CHANNEL_TYPES.GuildText, parent_id: CATEGORY },
            { id: CHANNELS.duo, name: 'duo', type: CHANNEL_TYPES.GuildText },
            { id: CHANNELS.noHooks, name: 'no-hooks', type: CHANNEL_TYPES.GuildText, manageWebhooks: false },
            { id: CHANNELS.thread, name: 'a thread', type: CHANNEL_TYPES.PublicThread, parent_id: CHANNELS.tavern },
            { id: CHANNELS.paid, name: 'paid', type: CHANNEL_TYPES.GuildText },
            { id: CHANNELS.unbound, name: 'unbound', type: CHANNEL_TYPES.GuildText },
            { id: CHANNELS.voiced, name: 'voiced', type: CHANNEL_TYPES.GuildText },
          ],
        },
      ],
    });
    const characters = [
      { name: 'Mira', description: 'A sea captain.', avatar: 'https://cdn.example/mira.png' },
      { name: 'Orin', description: 'A lighthouse keeper.', voice_id: 'adam' },
      { name: 'Vex', description: 'Talks only through OpenAI.', model_settings: { provider: 'openai', model: 'gpt-4o' } },
    ];
    for (const character of characters) expect((await server.request('POST', '/v1/characters', { body: character })).status).toBe(201);
    const bind = async (body: Record<string, unknown>) => expect((await server.request('POST', '/v1/channel-bindings', { key: server.internalKey, body: { platform: 'discord', guild_id: GUILD, ...body } })).status).toBe(201);
    await bind({ category_id: CATEGORY, character: 'mira' });
    await bind({ channel_id: CHANNELS.duo, character: 'mira' });
    await bind({ channel_id: CHANNELS.duo, character: 'orin' });
    await bind({ channel_id: CHANNELS.noHooks, character: 'orin' });
    await bind({ channel_id: CHANNELS.paid, character: 'vex' });
    await bind({ guild_id: '@me', character: 'orin' });
    await bind({ channel_id: CHANNELS.voiced, character: 'orin', voice_replies: true });

    const config = loadBotConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      DISCORD_TOKEN: discord.token,
      DISCORD_APPLICATION_ID: discord.applicationId,
      DISCORD_API_URL: discord.restApi,
      ANIMA_API_URL: server.url,
      INTERNAL_API_KEY: server.internalKey,
      SETUP_URL: 'https://anima.example/setup',
      BOT_BINDINGS_CACHE_MS: '0',
    });
    bot = new AnimaBot(config, createLogger(process.env.BOT_TEST_LOG_LEVEL ?? 'warn'), { random: () => 0.99 });
    if (process.env.BOT_TEST_DEBUG) bot.client.on('debug', (line) => console.log('DEBUG', line));
    await bot.start();
  }, 120_000);

  afterAll(async () => {
    await bot?.stop();
    await discord?.close();
    await server?.stop();
    await openrouter?.close();
    await gemini?.close();
    await elevenlabs?.close();
  });

  const mention = () => `<@${discord.botUser.id}>`;
  const waitForBotMessages = (channelId: string, count: number, what: string) =>
    discord.waitFor(() => (discord.botMessages(channelId).length >= count ? discord.botMessages(channelId) : undefined), 30_000, what);
  /** Sends a message and waits until the bot has finished everything it does about it. */
  const say = async (input: Parameters<DiscordFake['userMessage']>[0]): Promise<FakeMessage> => {
    const message = discord.userMessage(input);
    // The gateway dispatch reaches the client asynchronously; then the bot tracks its own work.
    await discord.waitFor(() => discord.restLog.length > 0, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await bot.idle();
    return message;
  };

  it('connects through the gateway, identifies with its token, and registers its slash commands in the guild', () => {
    expect(discord.identifies).toBe(1);
    expect(discord.connected).toBe(true);
    const names = (discord.commands.get(GUILD) ?? []).map((command) => command.name);
    expect(names).toEqual(expect.arrayContaining(['setup', 'usage', 'balance', 'reset', 'wack', 'sleep', 'info', 'imagine', 'voice', 'character']));
  });

  it('answers a mention through a webhook persona with the character name and avatar, and reuses the webhook', async () => {
    const before = discord.botMessages(CHANNELS.tavern).length;
    await say({ author: alice, channelId: CHANNELS.tavern, content: `${mention()} ahoy there`, mentions: [discord.botUser], nick: 'Captain Alice' });
    const [answer] = (await waitForBotMessages(CHANNELS.tavern, before + 1, 'a persona answer')).slice(before);
    expect(answer).toMatchObject({ source: 'webhook', content: expect.stringContaining('ahoy there'), avatar_url: 'https://cdn.example/mira.png' });
    expect(answer!.author.username).toBe('Mira');
    expect(answer!.content).not.toContain(discord.botUser.id);
    expect(discord.typing.some((typing) => typing.channelId === CHANNELS.tavern)).toBe(true);

    // The display name reached Anima as the speaker of the shared channel conversation.
    const conversations = await server.request('GET', '/v1/conversations', { key: server.internalKey, headers: { 'x-user-id': `discord:${alice.id}` } });
    expect(conversations.body.data).toEqual([expect.objectContaining({ guild_id: GUILD, channel_id: CHANNELS.tavern })]);
    const messages = await server.request('GET', `/v1/conversations/${conversations.body.data[0].id}/messages`, { key: server.internalKey, headers: { 'x-user-id': `discord:${alice.id}` } });
    expect(messages.body.data.find((message: { role: string }) => message.role === 'user')).toMatchObject({ speaker_name: 'Captain Alice', content: 'ahoy there' });

    await say({ author: alice, channelId: CHANNELS.tavern, content: `${mention()} again`, mentions: [discord.botUser] });
    await waitForBotMessages(CHANNELS.tavern, before + 2, 'a second answer');
    expect([...discord.webhooks.values()].filter((webhook) => webhook.channel_id === CHANNELS.tavern)).toHaveLength(1);
  });

  it('ignores messages that mention nobody, and messages from bots and webhooks (no loops)', async () => {
    const before = discord.messages.length;
    await say({ author: bob, channelId: CHANNELS.tavern, content: 'just talking among ourselves' });
    await say({ author: { id: snowflake(), username: 'OtherBot', bot: true }, channelId: CHANNELS.tavern, content: `${mention()} Mira, answer me`, mentions: [discord.botUser] });
    expect(discord.messages.slice(before).filter((message) => message.source !== 'user')).toEqual([]);
  });

  it('recreates the webhook when someone deleted it, and answers in a thread through the parent webhook', async () => {
    const webhook = [...discord.webhooks.values()].find((item) => item.channel_id === CHANNELS.tavern)!;
    discord.deleteWebhook(webhook.id);
    const before = discord.botMessages(CHANNELS.tavern).length;
    await say({ author: alice, channelId: CHANNELS.tavern, content: `${mention()} still there?`, mentions: [discord.botUser] });
    await waitForBotMessages(CHANNELS.tavern, before + 1, 'an answer after the webhook was deleted');
    const recreated = [...discord.webhooks.values()].filter((item) => item.channel_id === CHANNELS.tavern);
    expect(recreated).toHaveLength(1);
    expect(recreated[0]!.id).not.toBe(webhook.id);

    await say({ author: alice, channelId: CHANNELS.thread, content: 'Mira, what about this thread?' });
    const [inThread] = await waitForBotMessages(CHANNELS.thread, 1, 'an answer in the thread');
    expect(inThread).toMatchObject({ source: 'webhook', thread_id: CHANNELS.thread, webhook_id: recreated[0]!.id });
    expect(inThread!.author.username).toBe('Mira');
  });

  it('answers a DM as the DM character, in the user’s own conversation', async () => {
    const dm = discord.dmChannel(alice);
    await say({ author: alice, channelId: dm.id, content: 'hello in private' });
    const [answer] = await waitForBotMessages(dm.id, 1, 'a DM answer');
    expect(answer).toMatchObject({ source: 'bot', content: 'Echo: hello in private' });
    const conversations = await server.request('GET', '/v1/conversations', { key: server.internalKey, headers: { 'x-user-id': `discord:${alice.id}` } });
    expect(conversations.body.data.some((conversation: { place_key: string; channel_id: string | null }) => conversation.place_key.startsWith('dm:') && conversation.channel_id === null)).toBe(true);
  });

  it('with two characters in a channel, one answers a mention, and each one named answers', async () => {
    await say({ author: bob, channelId: CHANNELS.duo, content: `${mention()} hello everyone`, mentions: [discord.botUser] });
    const first = await waitForBotMessages(CHANNELS.duo, 1, 'one answer');
    expect(first.map((message) => message.author.username)).toEqual(['Mira']);

    await say({ author: bob, channelId: CHANNELS.duo, content: 'Mira and Orin, what do you both think?' });
    const both = (await waitForBotMessages(CHANNELS.duo, 3, 'two answers')).slice(1);
    expect(both.map((message) => message.author.username).sort()).toEqual(['Mira', 'Orin']);
    expect(both.every((message) => message.source === 'webhook')).toBe(true);

    // A reply to Orin's message goes to Orin alone.
    const orinMessage = both.find((message) => message.author.username === 'Orin')!;
    await say({ author: bob, channelId: CHANNELS.duo, content: 'why do you say that?', replyTo: orinMessage.id });
    const [reply] = (await waitForBotMessages(CHANNELS.duo, 4, 'the reply')).slice(3);
    expect(reply!.author.username).toBe('Orin');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(discord.botMessages(CHANNELS.duo)).toHaveLength(4);
  });

  it('splits a long answer at sentence boundaries into messages of at most 2,000 characters', async () => {
    const before = discord.botMessages(CHANNELS.tavern).length;
    await say({ author: alice, channelId: CHANNELS.tavern, content: `${mention()} tell me a long story`, mentions: [discord.botUser] });
    await bot.idle();
    const parts = discord.botMessages(CHANNELS.tavern).slice(before);
    expect(parts.length).toBe(2);
    for (const part of parts) {
      expect(part.content.length).toBeLessThanOrEqual(2000);
      expect(part.content.endsWith('below.')).toBe(true);
      expect(part.author.username).toBe('Mira');
    }
    expect(parts.map((part) => part.content).join(' ')).toBe(LONG_SENTENCE.repeat(40).trim());
  });

  it('falls back to a normal message prefixed with the character name without Manage Webhooks', async () => {
    await say({ author: alice, channelId: CHANNELS.noHooks, content: `${mention()} hi Orin`, mentions: [discord.botUser] });
    const [answer] = await waitForBotMessages(CHANNELS.noHooks, 1, 'a fallback answer');
    expect(answer!.source).toBe('bot');
    expect(answer!.content).toMatch(/^\*\*Orin:\*\* Echo: .*hi Orin$/);
    expect([...discord.webhooks.values()].some((webhook) => webhook.channel_id === CHANNELS.noHooks)).toBe(false);
  });

  it('passes an image attachment to Anima, which describes it for the character', async () => {
    const before = discord.botMessages(CHANNELS.tavern).length;
    await say({
      author: alice,
      channelId: CHANNELS.tavern,
      content: `${mention()} what is in this picture?`,
      mentions: [discord.botUser],
      attachments: [{ filename: 'square.png', contentType: 'image/png', bytes: solidPng(32, 32, [255, 0, 0]) }],
    });
    const [answer] = (await waitForBotMessages(CHANNELS.tavern, before + 1, 'an answer about the image')).slice(before);
    expect(answer!.author.username).toBe('Mira');
    const described = gemini.requests.find((request) => request.meta.hasImage);
    expect(described?.meta.imageMimeType).toBe('image/png');
    const prompt = openrouter
      .requestsTo('/chat/completions')
      .map((request) => JSON.stringify(request.body))
      .findLast((body) => body.includes('what is in this picture?'));
    expect(prompt).toContain('a image/png picture of a red square');
  });

  it('handles a voice note: sent to Anima as audio_url, transcribed, and the transcript answered', async () => {
    const capabilities = await bot.context.anima.capabilities();
    expect(capabilities).toEqual({ chatAudio: true, chatVoice: true });
    const before = discord.botMessages(CHANNELS.tavern).length;
    await say({
      author: alice,
      channelId: CHANNELS.tavern,
      content: `${mention()}`,
      mentions: [discord.botUser],
      voiceMessage: true,
      attachments: [{ filename: 'voice-message.ogg', contentType: 'audio/ogg', bytes: silentMp3(500), durationSecs: 0.5 }],
    });
    const after = (await waitForBotMessages(CHANNELS.tavern, before + 1, 'a reaction to the voice note')).slice(before);
    expect(after[0]).toMatchObject({ source: 'webhook', content: `Echo: ${VOICE_NOTE_TRANSCRIPT}` });
    expect(after[0]!.author.username).toBe('Mira');
    // Anima fetched the attachment from Discord's CDN and Scribe transcribed it.
    expect(elevenlabs.lastRequest('/v1/speech-to-text')).toBeDefined();
    const conversations = await server.request('GET', '/v1/conversations', { key: server.internalKey, headers: { 'x-user-id': `discord:${alice.id}` } });
    const tavern = conversations.body.data.find((conversation: { channel_id: string | null }) => conversation.channel_id === CHANNELS.tavern);
    const messages = await server.request('GET', `/v1/conversations/${tavern.id}/messages?limit=5`, { key: server.internalKey, headers: { 'x-user-id': `discord:${alice.id}` } });
    const heard = messages.body.data.find((message: { role: string; content: string }) => message.role === 'user' && message.content === VOICE_NOTE_TRANSCRIPT);
    expect(heard.metadata.audio).toMatchObject({ transcribed_by: { provider: 'elevenlabs' }, source_url: expect.stringContaining('/voice-message.ogg') });
  });

  it('a binding with voice replies posts the spoken answer as an attachment; /voice speaks the last answer', async () => {
    await say({ author: bob, channelId: CHANNELS.voiced, content: `${mention()} light the lamp`, mentions: [discord.botUser] });
    const [answer] = await waitForBotMessages(CHANNELS.voiced, 1, 'a spoken answer');
    expect(answer).toMatchObject({ source: 'webhook', content: 'Echo: light the lamp' });
    expect(answer!.author.username).toBe('Orin');
    expect(answer!.files).toHaveLength(1);
    expect(answer!.files[0]!.name).toBe('orin.mp3');
    // Real MP3 frames from the ElevenLabs fake, in Orin's voice (adam).
    expect(answer!.files[0]!.bytes.subarray(0, 2).readUInt16BE(0) & 0xffe0).toBe(0xffe0);
    expect(elevenlabs.lastRequest('/v1/text-to-speech')?.body).toMatchObject({ text: 'Echo: light the lamp' });

    const interaction = discord.slashCommand({ user: bob, channelId: CHANNELS.voiced, name: 'voice' });
    await discord.waitFor(() => (interaction.original?.files.length ? interaction.original : undefined), 30_000, 'the /voice clip');
    expect(interaction.callbacks).toEqual([5]);
    expect(interaction.original!.content).toBe('🔊 Orin');
    expect(interaction.original!.files[0]!.name).toBe('orin.mp3');
  });

  it('/imagine posts the picture as an attachment, or says image generation is not available', async () => {
    const interaction = discord.slashCommand({ user: alice, channelId: CHANNELS.tavern, name: 'imagine', options: { prompt: 'a lighthouse in a storm' } });
    await discord.waitFor(() => interaction.original && interaction.original.content !== '' ? interaction.original : undefined, 30_000, 'the /imagine answer');
    expect(interaction.callbacks).toEqual([5]);
    expect(interaction.acknowledgedAfterMs).toBeLessThan(3000);
    const imagesApi = await server.request('POST', '/v1/images/generations', { key: server.internalKey, headers: { 'x-user-id': 'probe' }, body: { prompt: 'probe' } });
    if (imagesApi.status === 404) {
      expect(interaction.original!.content).toBe("Image generation isn't available on this Anima server yet.");
    } else if (imagesApi.status === 402) {
      // No image provider key in this test server: the user is shown where to add one.
      expect(interaction.original!.embeds[0]).toMatchObject({ title: 'Set up your own provider key' });
    } else {
      expect(interaction.original!.files[0]?.contentType).toMatch(/^image\//);
    }
  });

  it('answers a 402 provider_key_required with the setup embed, and /setup shows it too', async () => {
    await say({ author: bob, channelId: CHANNELS.paid, content: `${mention()} hello Vex`, mentions: [discord.botUser] });
    const [answer] = await waitForBotMessages(CHANNELS.paid, 1, 'the setup answer');
    expect(answer!.source).toBe('bot');
    expect(answer!.content).toBe('I need a provider key to answer you.');
    expect(answer!.embeds[0]).toMatchObject({ title: 'Set up your own provider key', url: 'https://anima.example/setup' });
    expect(String(answer!.embeds[0]!.description)).toContain('**openai**');
    expect(JSON.stringify(answer)).not.toMatch(/"status":|problem|stack/);

    // /setup answers only bob, with a one-time link code that signs him in on the dashboard as himself.
    const interaction = discord.slashCommand({ user: bob, channelId: CHANNELS.paid, name: 'setup' });
    await discord.waitFor(() => (interaction.original?.embeds?.length ? interaction.original : undefined), 15_000, 'the /setup answer');
    expect(interaction.callbacks).toEqual([5]);
    expect(interaction.original).toMatchObject({ ephemeral: true });
    const embed = interaction.original!.embeds[0]!;
    expect(embed).toMatchObject({ title: 'Set up your own provider key', url: expect.stringMatching(/^https:\/\/anima\.example\/setup\?code=[0-9A-Z]{4}-[0-9A-Z]{4}$/) });
    const code = new URL(String(embed.url)).searchParams.get('code')!;
    expect(String(embed.description)).toContain(code);
    const redeemed = await server.request('POST', '/v1/link-codes/redeem', { key: null, body: { code } });
    expect(redeemed.status).toBe(201);
    const me = await server.request('GET', '/v1/me', { key: redeemed.body.key });
    expect(me.body.identities).toEqual([`discord:${bob.id}`]);

    // Typed in a shared channel, !setup shows no code (everyone would see it).
    await say({ author: bob, channelId: CHANNELS.paid, content: '!setup' });
    const plain = (await waitForBotMessages(CHANNELS.paid, 2, 'the !setup answer')).at(-1);
    expect(plain!.content).toContain('/setup');
    expect(plain!.embeds[0]).toMatchObject({ url: 'https://anima.example/setup' });
    expect(JSON.stringify(plain)).not.toMatch(/code=/);
  });

  it('deletes a message containing an API key and warns its author, without sending it to Anima', async () => {
    const chatCalls = openrouter.requestsTo('/chat/completions').length;
    const leaked = await say({ author: bob, channelId: CHANNELS.tavern, content: `${mention()} here is my key sk-or-v1-${'ab12'.repeat(16)}`, mentions: [discord.botUser] });
    await discord.waitFor(() => leaked.deleted, 10_000, 'the deletion');
    const warning = discord.botMessages(CHANNELS.tavern).at(-1)!;
    expect(warning.content).toContain(`<@${bob.id}>`);
    expect(warning.content).toContain('Never post keys in Discord');
    expect(warning.embeds[0]).toMatchObject({ url: 'https://anima.example/setup' });
    expect(openrouter.requestsTo('/chat/completions')).toHaveLength(chatCalls);
    expect(server.logs.join('\n')).not.toContain('ab12ab12ab12');
  });

  it('/reset and !wack reach the character through the chat API; /balance and /usage degrade clearly', async () => {
    const reset = discord.slashCommand({ user: alice, channelId: CHANNELS.tavern, name: 'wack' });
    await discord.waitFor(() => (reset.original?.content ? reset.original : undefined), 15_000, 'the /wack answer');
    expect(reset.callbacks).toEqual([5]);
    expect(reset.original!.content).toMatch(/^\*\*Mira:\*\* /);
    expect(reset.original!.content).not.toContain('Echo:');

    const balance = discord.slashCommand({ user: alice, channelId: CHANNELS.tavern, name: 'balance' });
    await discord.waitFor(() => (balance.original?.embeds.length ? balance.original : undefined), 15_000, 'the /balance answer');
    expect(balance.original!.ephemeral).toBe(true);
    const wallet = (await server.request('GET', '/v1/wallet/balance', { key: server.internalKey, headers: { 'x-user-id': `discord:${alice.id}` } })).body;
    const balanceEmbed = balance.original!.embeds[0] as { title: string; description: string; fields: Array<{ name: string; value: string }> };
    expect(balanceEmbed.title).toBe('Your credits');
    expect(balanceEmbed.description).toContain(`**${wallet.balance.toLocaleString('en-US', { maximumFractionDigits: 2 })}** credits`);
    expect(balanceEmbed.fields).toEqual(expect.arrayContaining([{ name: 'Plan', value: expect.stringContaining(wallet.plan.name), inline: true }]));
    expect(JSON.stringify(balance.original)).not.toMatch(/balance_micro|user_id|next_refresh_at/);

    const usage = discord.slashCommand({ user: alice, channelId: CHANNELS.tavern, name: 'usage' });
    await discord.waitFor(() => (usage.original?.embeds.length ? usage.original : undefined), 15_000, 'the /usage answer');
    const usageEmbed = usage.original!.embeds[0] as { title: string; description: string; fields: Array<{ name: string; value: string }> };
    expect(usageEmbed.title).toBe('Your usage — last 30 days');
    expect(usageEmbed.description).toMatch(/^\*\*Total:\*\* \d+ requests · /);
    // Alice chatted, had a picture described and a voice note transcribed: each service is a readable line.
    const names = usageEmbed.fields.map((field) => field.name);
    expect(names).toEqual(expect.arrayContaining(['💬 Chat', '🎙️ Voice messages']));
    expect(usageEmbed.fields.find((field) => field.name === '💬 Chat')!.value).toMatch(/requests? · [\d,]+ tokens · /);
    expect(JSON.stringify(usage.original)).not.toMatch(/credits_micro|paid_by|prompt_tokens/);
  });

  it('/character bind, list and unbind manage the channel’s characters, for Manage Channels only', async () => {
    const denied = discord.slashCommand({ user: bob, channelId: CHANNELS.unbound, name: 'character', subcommand: 'bind', options: { character: 'orin' } });
    await discord.waitFor(() => (denied.original?.content ? denied.original : undefined), 10_000, 'the refusal');
    expect(denied.original!.content).toContain('Manage Channels');

    const manager = PERMISSIONS.ManageChannels | PERMISSIONS.SendMessages | PERMISSIONS.ViewChannel;
    const bind = discord.slashCommand({ user: alice, channelId: CHANNELS.unbound, name: 'character', subcommand: 'bind', options: { character: 'orin', trigger_words: 'lamp, tide' }, permissions: manager });
    await discord.waitFor(() => (bind.original?.content ? bind.original : undefined), 10_000, 'the bind answer');
    expect(bind.original!.content).toContain('**Orin** now answers in this channel');
    expect(bind.original!.content).toContain('"lamp"');

    await say({ author: bob, channelId: CHANNELS.unbound, content: 'the tide is high' });
    const [answer] = await waitForBotMessages(CHANNELS.unbound, 1, 'an answer to a trigger word');
    expect(answer!.author.username).toBe('Orin');

    const unbind = discord.slashCommand({ user: alice, channelId: CHANNELS.unbound, name: 'character', subcommand: 'unbind', options: { character: 'orin' }, permissions: manager });
    await discord.waitFor(() => (unbind.original?.content ? unbind.original : undefined), 10_000, 'the unbind answer');
    expect(unbind.original!.content).toContain('no longer answers');
    const resolved = await server.request('GET', `/v1/channel-bindings/resolve?guild_id=${GUILD}&channel_id=${CHANNELS.unbound}`, { key: server.internalKey });
    expect(resolved.body.data).toEqual([]);
  });

  it('resumes after the gateway drops, and keeps answering', async () => {
    discord.dropGateway(4000);
    await discord.waitFor(() => (discord.resumes > 0 && discord.connected ? true : undefined), 30_000, 'a resumed session');
    expect(discord.identifies).toBe(1);
    const before = discord.botMessages(CHANNELS.tavern).length;
    await say({ author: alice, channelId: CHANNELS.tavern, content: `${mention()} back?`, mentions: [discord.botUser] });
    await waitForBotMessages(CHANNELS.tavern, before + 1, 'an answer after resuming');
  });
});
