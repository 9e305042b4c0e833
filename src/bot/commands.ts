import {
  AttachmentBuilder,
  ChannelType,
  type ChatInputCommandInteraction,
  InteractionContextType,
  type Message,
  MessageFlags,
  PermissionFlagsBits,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
  SlashCommandBuilder,
  type TextBasedChannel,
} from 'discord.js';
import { AnimaApiError, type Actor, type BindingView } from './anima-client.js';
import { actorOf, placeOf, type BotContext, type Place } from './context.js';
import { balanceEmbed, usageEmbed, type UsageReportView, type WalletView } from './account-embeds.js';
import { describeError, isMissingFeature, setupEmbed, type BotReply } from './replies.js';
import { DISCORD_MESSAGE_LIMIT, splitMessage } from './text.js';

/** The chat commands Anima itself answers (sent to the character as the message). */
const CHARACTER_COMMANDS = ['reset', 'wack', 'sleep', 'info'] as const;
type CharacterCommand = (typeof CHARACTER_COMMANDS)[number];

const CHARACTER_COMMAND_TEXT: Record<CharacterCommand, string> = {
  reset: 'Make the character forget its long-term memories of you',
  wack: "Clear the character's short-term memory of this conversation",
  sleep: 'Have the character form long-term memories from this conversation now',
  info: 'About the character, its model and its memories',
};

/** The slash commands, as registered with Discord. */
export function commandDefinitions(): RESTPostAPIChatInputApplicationCommandsJSONBody[] {
  const characterOption = (builder: SlashCommandBuilder) =>
    builder.addStringOption((option) => option.setName('character').setDescription('Which character (name or slug); the channel’s first by default').setMaxLength(100));
  const commands: Array<{ toJSON(): unknown }> = [
    new SlashCommandBuilder().setName('setup').setDescription('How to use your own AI provider key with the characters here'),
    new SlashCommandBuilder().setName('usage').setDescription('What you used in the last 30 days'),
    new SlashCommandBuilder().setName('balance').setDescription('Your credits'),
    ...CHARACTER_COMMANDS.map((name) => characterOption(new SlashCommandBuilder().setName(name).setDescription(CHARACTER_COMMAND_TEXT[name]))),
    new SlashCommandBuilder()
      .setName('imagine')
      .setDescription('Draw a picture')
      .addStringOption((option) => option.setName('prompt').setDescription('What to draw').setRequired(true).setMaxLength(1500)),
    new SlashCommandBuilder()
      .setName('voice')
      .setDescription('Speak the last answer here, or turn spoken replies on or off in this channel')
      .addStringOption((option) =>
        option
          .setName('mode')
          .setDescription('speak (default) or toggle spoken replies')
          .addChoices({ name: 'speak the last answer', value: 'speak' }, { name: 'toggle spoken replies (Manage Channels)', value: 'toggle' }),
      ),
  ];
  const character = new SlashCommandBuilder()
    .setName('character')
    .setDescription('Which characters answer here')
    .setDefaultMemberPermissions(PermissionFlagsBits.ManageChannels)
    .setContexts(InteractionContextType.Guild)
    .addSubcommand((sub) =>
      sub
        .setName('bind')
        .setDescription('Bind a character to this channel, its category or the whole server')
        .addStringOption((option) => option.setName('character').setDescription('Character slug or id').setRequired(true).setMaxLength(200))
        .addStringOption((option) =>
          option.setName('scope').setDescription('Where (default: this channel)').addChoices({ name: 'this channel', value: 'channel' }, { name: 'this category', value: 'category' }, { name: 'the whole server', value: 'server' }),
        )
        .addBooleanOption((option) => option.setName('every_message').setDescription('Answer every message, not only mentions, replies and its name'))
        .addStringOption((option) => option.setName('trigger_words').setDescription('Comma-separated words that also call it').setMaxLength(500))
        .addNumberOption((option) => option.setName('free_will').setDescription('Chance (0–1) of speaking up unprompted; 0 = off').setMinValue(0).setMaxValue(1))
        .addBooleanOption((option) => option.setName('voice_replies').setDescription('Answer with a voice clip too')),
    )
    .addSubcommand((sub) =>
      sub
        .setName('unbind')
        .setDescription('Remove a character from this channel, its category or the server')
        .addStringOption((option) => option.setName('character').setDescription('Character slug or id').setRequired(true).setMaxLength(200))
        .addStringOption((option) =>
          option.setName('scope').setDescription('Where (default: this channel)').addChoices({ name: 'this channel', value: 'channel' }, { name: 'this category', value: 'category' }, { name: 'the whole server', value: 'server' }),
        ),
    )
    .addSubcommand((sub) => sub.setName('list').setDescription('The characters bound in this server'));
  return [...commands, character].map((command) => command.toJSON() as RESTPostAPIChatInputApplicationCommandsJSONBody);
}

/** Answers a command in Discord: a slash interaction or a text message. */
interface CommandReplier {
  /** Acknowledge now: the work may take longer than Discord's 3 seconds. */
  defer(options?: { ephemeral?: boolean }): Promise<void>;
  send(reply: BotReply & { files?: AttachmentBuilder[] }, options?: { ephemeral?: boolean }): Promise<void>;
}

export interface CommandInvocation {
  name: string;
  subcommand: string | undefined;
  options: Record<string, string | number | boolean | undefined>;
  actor: Actor;
  place: Place;
  channel: TextBasedChannel;
  canManageChannels: boolean;
  replier: CommandReplier;
  /** Only the invoking user sees the answer (an ephemeral slash-command reply, or a DM). */
  privateReply?: boolean;
}

function interactionReplier(interaction: ChatInputCommandInteraction): CommandReplier {
  return {
    async defer(options) {
      if (!interaction.deferred && !interaction.replied) await interaction.deferReply(options?.ephemeral ? { flags: MessageFlags.Ephemeral } : {});
    },
    async send(reply, options) {
      const [first = '', ...rest] = reply.content ? splitMessage(reply.content) : [''];
      const payload = { content: first || undefined, embeds: reply.embeds ?? [], files: reply.files ?? [], allowedMentions: { parse: [] } };
      if (interaction.deferred || interaction.replied) await interaction.editReply(payload);
      else await interaction.reply({ ...payload, ...(options?.ephemeral ? { flags: MessageFlags.Ephemeral } : {}) });
      for (const part of rest) await interaction.followUp({ content: part, allowedMentions: { parse: [] }, ...(options?.ephemeral ? { flags: MessageFlags.Ephemeral } : {}) });
    },
  };
}

function messageReplier(message: Message): CommandReplier {
  return {
    async defer() {
      if ('sendTyping' in message.channel) await message.channel.sendTyping().catch(() => undefined);
    },
    async send(reply) {
      const parts = reply.content ? splitMessage(reply.content) : [''];
      for (const [index, part] of parts.entries()) {
        const last = index === parts.length - 1;
        await message.reply({ content: part || undefined, embeds: last ? (reply.embeds ?? []) : [], files: last ? (reply.files ?? []) : [], allowedMentions: { parse: [], repliedUser: false } });
      }
    },
  };
}

export function invocationFromInteraction(interaction: ChatInputCommandInteraction): CommandInvocation | undefined {
  const channel = interaction.channel;
  if (!channel) return undefined;
  const options: CommandInvocation['options'] = {};
  const leaves = interaction.options.data.flatMap((option) => (option.options ? option.options : [option]));
  for (const option of leaves) if (option.value !== undefined && option.value !== null) options[option.name] = option.value;
  const member = interaction.member;
  const displayName = member && 'displayName' in member ? member.displayName : (member?.nick ?? undefined);
  return {
    name: interaction.commandName,
    subcommand: interaction.options.getSubcommand(false) ?? undefined,
    options,
    actor: actorOf(interaction.user, displayName, channel),
    place: placeOf(channel),
    channel,
    canManageChannels: interaction.memberPermissions?.has(PermissionFlagsBits.ManageChannels) ?? false,
    replier: interactionReplier(interaction),
    privateReply: true,
  };
}

/** `!setup`, `!usage`, `!balance`, `!imagine <prompt>`, `!voice [toggle]` typed in a channel. */
const TEXT_COMMAND = /^!(setup|usage|balance|imagine|voice)(?:\s+([\s\S]*))?$/i;

export function invocationFromMessage(message: Message): CommandInvocation | undefined {
  const match = TEXT_COMMAND.exec(message.content.trim());
  if (!match) return undefined;
  const name = match[1]!.toLowerCase();
  const argument = match[2]?.trim() ?? '';
  const options: CommandInvocation['options'] = {};
  if (name === 'imagine') options.prompt = argument;
  if (name === 'voice' && argument) options.mode = argument.toLowerCase();
  return {
    name,
    subcommand: undefined,
    options,
    actor: actorOf(message.author, message.member?.displayName, message.channel),
    place: placeOf(message.channel),
    channel: message.channel,
    canManageChannels: message.member?.permissionsIn(message.channelId).has(PermissionFlagsBits.ManageChannels) ?? false,
    replier: messageReplier(message),
    privateReply: message.channel.isDMBased(),
  };
}

export async function handleSlashCommand(context: BotContext, interaction: ChatInputCommandInteraction): Promise<void> {
  const invocation = invocationFromInteraction(interaction);
  if (!invocation) {
    await interaction.reply({ content: 'I cannot work in this kind of channel.', flags: MessageFlags.Ephemeral });
    return;
  }
  await runCommand(context, invocation);
}

export async function runCommand(context: BotContext, invocation: CommandInvocation): Promise<void> {
  const { replier } = invocation;
  try {
    switch (invocation.name) {
      case 'setup':
        await replier.defer({ ephemeral: true });
        await replier.send(await setupReply(context, invocation), { ephemeral: true });
        return;
      case 'usage':
        await replier.defer({ ephemeral: true });
        await replier.send(await usageReply(context, invocation.actor), { ephemeral: true });
        return;
      case 'balance':
        await replier.defer({ ephemeral: true });
        await replier.send(await balanceReply(context, invocation.actor), { ephemeral: true });
        return;
      case 'reset':
      case 'wack':
      case 'sleep':
      case 'info':
        await replier.defer();
        await replier.send(await characterCommand(context, invocation, invocation.name));
        return;
      case 'imagine':
        await replier.defer();
        await replier.send(await imagine(context, invocation));
        return;
      case 'voice':
        await replier.defer();
        await replier.send(await voice(context, invocation));
        return;
      case 'character':
        await replier.defer({ ephemeral: true });
        await replier.send(await character(context, invocation), { ephemeral: true });
        return;
      default:
        await replier.send({ content: 'I do not know that command.' }, { ephemeral: true });
    }
  } catch (error) {
    if (!(error instanceof AnimaApiError)) context.logger.warn({ err: error, command: invocation.name }, 'command failed');
    await replier.send(describeError(error, context.config.setupUrl), { ephemeral: true }).catch((sendError: unknown) => {
      context.logger.warn({ err: sendError, command: invocation.name }, 'could not tell the user a command failed');
    });
  }
}

function notAvailable(what: string): BotReply {
  return { content: `${what} isn't available on this Anima server yet.` };
}

async function usageReply(context: BotContext, actor: Actor): Promise<BotReply> {
  try {
    const usage = await context.anima.request<UsageReportView>('GET', '/v1/me/usage?days=30', { actor });
    return { embeds: [usageEmbed(usage, context.config.setupUrl)] };
  } catch (error) {
    if (isMissingFeature(error)) return { content: 'Usage reports are not available on this Anima server yet.' };
    throw error;
  }
}

/**
 * `/setup`: the setup steps plus, where only this user sees the answer, a one-time link code
 * (POST /v1/link-codes for this Discord user) that signs them in on the dashboard as themselves.
 */
async function setupReply(context: BotContext, invocation: CommandInvocation): Promise<BotReply> {
  if (!invocation.privateReply) {
    return { content: 'For your own sign-in code, use `/setup` (only you see the answer) or send me `!setup` in a direct message.', embeds: [setupEmbed(context.config.setupUrl)] };
  }
  try {
    const link = await context.anima.request<{ code: string; url: string; expires_at: string }>('POST', '/v1/link-codes', { actor: invocation.actor });
    return { embeds: [setupEmbed(link.url, undefined, { code: link.code, expiresAt: link.expires_at })] };
  } catch (error) {
    // A server without link codes still gets the plain steps.
    if (isMissingFeature(error)) return { embeds: [setupEmbed(context.config.setupUrl)] };
    throw error;
  }
}

async function balanceReply(context: BotContext, actor: Actor): Promise<BotReply> {
  try {
    const wallet = await context.anima.request<WalletView>('GET', '/v1/wallet/balance', { actor });
    return { embeds: [balanceEmbed(wallet, context.config.setupUrl)] };
  } catch (error) {
    if (isMissingFeature(error)) return { content: `Credits are not set up on this Anima server: with your own provider key there is nothing to pay here. ${context.config.setupUrl}` };
    throw error;
  }
}

async function pickCharacter(context: BotContext, invocation: CommandInvocation): Promise<BindingView | undefined> {
  const bindings = await context.bindingsFor(invocation.place);
  const wanted = typeof invocation.options.character === 'string' ? invocation.options.character.trim().toLowerCase() : undefined;
  if (!wanted) return bindings[0];
  return bindings.find((binding) => [binding.character.slug, binding.character.name.toLowerCase(), binding.character.id].includes(wanted));
}

async function characterCommand(context: BotContext, invocation: CommandInvocation, command: CharacterCommand): Promise<BotReply> {
  const binding = await pickCharacter(context, invocation);
  if (!binding) return { content: noCharacterText(invocation) };
  const answer = await context.anima.chat(binding.character.id, invocation.actor, { content: `!${command}` });
  return { content: `**${binding.character.name}:** ${answer.response}` };
}

function noCharacterText(invocation: CommandInvocation): string {
  if (typeof invocation.options.character === 'string') return `No character called "${invocation.options.character}" answers here.`;
  return invocation.place.isDirectMessage
    ? 'No character answers direct messages on this server yet.'
    : 'No character answers in this channel yet. Someone with Manage Channels can add one with `/character bind`.';
}

async function imagine(context: BotContext, invocation: CommandInvocation): Promise<BotReply & { files?: AttachmentBuilder[] }> {
  const prompt = typeof invocation.options.prompt === 'string' ? invocation.options.prompt.trim() : '';
  if (!prompt) return { content: 'Tell me what to draw: `/imagine prompt: a lighthouse in a storm`.' };
  let result: ImageResult;
  try {
    result = await context.anima.request<ImageResult>('POST', '/v1/images/generations', { actor: invocation.actor, body: { prompt, n: 1 } });
  } catch (error) {
    if (isMissingFeature(error)) return notAvailable('Image generation');
    throw error;
  }
  const image = await waitForImage(context, invocation.actor, result);
  if (!image) return { content: 'The picture is still being drawn; it will be in your gallery when it is done.' };
  const extension = image.contentType.includes('jpeg') ? 'jpg' : image.contentType.includes('webp') ? 'webp' : 'png';
  const caption = `🎨 ${prompt}`.slice(0, DISCORD_MESSAGE_LIMIT);
  return { content: caption, files: [new AttachmentBuilder(image.bytes, { name: `imagine.${extension}`, description: prompt.slice(0, 1000) })] };
}

interface ImageResult {
  id?: string;
  status?: string;
  data?: Array<{ id?: string; url?: string; b64_json?: string }>;
}

/** The bytes of the first image: inline base64, its URL, or (202 pending) polled until done, up to two minutes. */
async function waitForImage(context: BotContext, actor: Actor, result: ImageResult): Promise<{ bytes: Buffer; contentType: string } | undefined> {
  const first = result.data?.[0];
  if (first?.b64_json) return { bytes: Buffer.from(first.b64_json, 'base64'), contentType: 'image/png' };
  if (first?.url) return context.anima.fetchBytes(first.url, actor);
  const id = first?.id ?? result.id;
  if (!id) return undefined;
  const deadline = Date.now() + 120_000;
  for (let delay = 1000; Date.now() < deadline; delay = Math.min(delay * 1.5, 5000)) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    const image = await context.anima.request<{ status?: string; error?: string }>('GET', `/v1/images/${encodeURIComponent(id)}`, { actor });
    if (image.status === 'succeeded') return context.anima.fetchBytes(`/v1/images/${encodeURIComponent(id)}/content`, actor);
    if (image.status === 'failed') throw new AnimaApiError(422, 'image_failed', image.error ?? 'The picture could not be drawn.', {}, undefined);
  }
  return undefined;
}

async function voice(context: BotContext, invocation: CommandInvocation): Promise<BotReply & { files?: AttachmentBuilder[] }> {
  const mode = invocation.options.mode === 'toggle' ? 'toggle' : 'speak';
  if (mode === 'toggle') {
    if (invocation.place.isDirectMessage) return { content: 'Spoken replies are switched per channel on a server.' };
    if (!invocation.canManageChannels) return { content: 'Switching spoken replies needs the Manage Channels permission.' };
    const bindings = await context.bindingsFor(invocation.place);
    if (bindings.length === 0) return { content: noCharacterText(invocation) };
    const enable = !bindings.every((binding) => binding.voice_replies);
    for (const binding of bindings) await context.anima.request('PATCH', `/v1/channel-bindings/${binding.id}`, { body: { voice_replies: enable } });
    context.forgetBindings(invocation.place.guildId);
    const wide = bindings.some((binding) => binding.scope !== 'channel') ? ` (for every channel of this ${bindings[0]!.scope === 'category' ? 'category' : 'server'} without its own characters)` : '';
    const capabilities = await context.anima.capabilities();
    const warning = enable && !capabilities.chatVoice ? '\nNote: this Anima server cannot speak yet, so answers stay text until it can.' : '';
    return { content: `Spoken replies are now **${enable ? 'on' : 'off'}** for ${bindings.map((binding) => binding.character.name).join(', ')}${wide}.${warning}` };
  }
  const last = context.lastAnswer.get(invocation.channel.id);
  if (!last) return { content: 'Nobody has said anything here yet that I could speak.' };
  try {
    const audio = await context.anima.requestBytes('POST', `/v1/characters/${encodeURIComponent(last.characterId)}/voice`, { actor: invocation.actor, body: { text: last.text.slice(0, 5000) } });
    const extension = audio.contentType.includes('wav') ? 'wav' : audio.contentType.includes('ogg') ? 'ogg' : 'mp3';
    return { content: `🔊 ${last.name}`, files: [new AttachmentBuilder(audio.bytes, { name: `${last.slug}.${extension}` })] };
  } catch (error) {
    if (isMissingFeature(error)) return notAvailable('Speech');
    throw error;
  }
}

async function character(context: BotContext, invocation: CommandInvocation): Promise<BotReply> {
  if (invocation.place.isDirectMessage) return { content: 'Characters are bound to server channels; use this in a server.' };
  if (!invocation.canManageChannels) return { content: 'Managing characters needs the Manage Channels permission.' };
  const { place, options } = invocation;
  const scope = options.scope === 'category' || options.scope === 'server' ? options.scope : invocation.subcommand === 'list' ? undefined : 'channel';
  const where = scope === 'category' ? { category_id: place.categoryId } : scope === 'server' ? {} : { channel_id: place.channelId };
  if (scope === 'category' && !place.categoryId) return { content: 'This channel is not in a category.' };
  const whereText = scope === 'category' ? 'this category' : scope === 'server' ? 'this server' : 'this channel';

  switch (invocation.subcommand ?? 'list') {
    case 'bind': {
      const words = typeof options.trigger_words === 'string' ? options.trigger_words.split(',').map((word) => word.trim()).filter(Boolean).slice(0, 50) : undefined;
      const freeWill = typeof options.free_will === 'number' ? options.free_will : undefined;
      const binding = await context.anima.request<BindingView>('POST', '/v1/channel-bindings', {
        body: {
          platform: 'discord',
          guild_id: place.guildId,
          ...where,
          character: String(options.character),
          triggers: { ...(words ? { words } : {}), ...(typeof options.every_message === 'boolean' ? { every_message: options.every_message } : {}) },
          ...(freeWill !== undefined ? { free_will: { enabled: freeWill > 0, probability: freeWill } } : {}),
          ...(typeof options.voice_replies === 'boolean' ? { voice_replies: options.voice_replies } : {}),
        },
      });
      context.forgetBindings(place.guildId);
      return { content: `**${binding.character.name}** now answers in ${whereText}: ${describeTriggers(binding)}.` };
    }
    case 'unbind': {
      const wanted = String(options.character).trim().toLowerCase();
      const all = await context.anima.listBindings(place.guildId);
      const match = all.find(
        (binding) =>
          [binding.character.slug, binding.character.id, binding.character.name.toLowerCase()].includes(wanted) &&
          binding.scope === scope &&
          (scope !== 'channel' || binding.channel_id === place.channelId) &&
          (scope !== 'category' || binding.category_id === place.categoryId),
      );
      if (!match) return { content: `"${String(options.character)}" is not bound to ${whereText}.` };
      await context.anima.request('DELETE', `/v1/channel-bindings/${match.id}`);
      context.forgetBindings(place.guildId);
      return { content: `**${match.character.name}** no longer answers in ${whereText}.` };
    }
    default: {
      const all = await context.anima.listBindings(place.guildId);
      if (all.length === 0) return { content: 'No characters are bound in this server yet. Add one with `/character bind`.' };
      const here = await context.bindingsFor(place);
      const lines = all.map((binding) => {
        const at = binding.scope === 'channel' ? `<#${binding.channel_id}>` : binding.scope === 'category' ? `category ${binding.category_id}` : 'whole server';
        const active = here.some((item) => item.id === binding.id) ? ' ← answers here' : '';
        return `• **${binding.character.name}** (\`${binding.character.slug}\`) — ${at}: ${describeTriggers(binding)}${active}`;
      });
      return { content: lines.join('\n') };
    }
  }
}

function describeTriggers(binding: BindingView): string {
  const triggers: string[] = [];
  if (binding.triggers.every_message) triggers.push('every message');
  if (binding.triggers.mention) triggers.push('@mentions');
  if (binding.triggers.reply) triggers.push('replies');
  if (binding.triggers.name) triggers.push('its name');
  if (binding.triggers.words.length > 0) triggers.push(`the words ${binding.triggers.words.map((word) => `"${word}"`).join(', ')}`);
  if (binding.free_will.enabled) triggers.push(`unprompted ${Math.round(binding.free_will.probability * 100)}% of the time`);
  if (binding.voice_replies) triggers.push('with voice');
  return triggers.join(', ') || 'nothing (no triggers)';
}

export const GUILD_TEXT_CHANNELS = [ChannelType.GuildText, ChannelType.GuildAnnouncement, ChannelType.PublicThread, ChannelType.PrivateThread];
