import { AttachmentBuilder, cleanContent, type Message, MessageFlags, type SendableChannels } from 'discord.js';
import { AnimaApiError, type BindingView } from './anima-client.js';
import { invocationFromMessage, runCommand } from './commands.js';
import { actorOf, placeOf, type BotContext } from './context.js';
import { describeError, setupEmbed } from './replies.js';
import { chooseResponders, type Responder } from './routing.js';
import { looksLikeApiKey } from './text.js';

/** The chat commands Anima answers itself; typed in a channel they go to its first character. */
const CHARACTER_COMMAND = /^!(wack|reset|sleep|info|help)\s*$/i;
/** Typing indicators last about 10 seconds; renewed while the answer is produced. */
const TYPING_RENEW_MS = 8_000;

/**
 * One incoming Discord message: ignore bots and webhooks (characters never answer each other),
 * delete pasted API keys, run `!` commands, then let the bound characters the message triggers
 * answer, one after another, each through its persona.
 */
export async function handleMessage(context: BotContext, message: Message): Promise<void> {
  if (message.author.bot || message.webhookId || message.system) return;
  if (!message.channel.isSendable()) return;

  if (looksLikeApiKey(message.content)) {
    await handleLeakedKey(context, message);
    return;
  }
  const command = invocationFromMessage(message);
  if (command) {
    await runCommand(context, command);
    return;
  }

  const place = placeOf(message.channel);
  let bindings: BindingView[];
  try {
    bindings = await context.bindingsFor(place);
  } catch (error) {
    context.logger.warn({ err: error, channelId: message.channelId }, 'could not read the channel bindings');
    if (place.isDirectMessage || message.mentions.users.has(context.client.user!.id)) await message.reply({ ...describeError(error, context.config.setupUrl), allowedMentions: { repliedUser: false } });
    return;
  }
  const botId = context.client.user!.id;
  const mentionsBot = message.mentions.users.has(botId);
  if (bindings.length === 0) {
    if (place.isDirectMessage || mentionsBot) {
      await message.reply({
        content: place.isDirectMessage ? 'No character answers direct messages on this server yet.' : 'No character answers in this channel yet. Someone with Manage Channels can add one with `/character bind`.',
        allowedMentions: { repliedUser: false },
      });
    }
    return;
  }

  const responders = chooseResponders(
    bindings,
    {
      content: message.content,
      mentionsBot,
      repliedToCharacterId: repliedCharacter(context, message, bindings),
      isDirectMessage: place.isDirectMessage,
      isCharacterCommand: CHARACTER_COMMAND.test(message.content.trim()),
    },
    {
      lastSpeakerId: context.lastAnswer.get(message.channelId)?.characterId,
      lastFreeWillAt: context.lastFreeWillAt.get(message.channelId),
      now: Date.now(),
      random: context.random,
    },
  );
  for (const responder of responders) await answer(context, message, message.channel, responder);
}

async function answer(context: BotContext, message: Message, channel: SendableChannels, responder: Responder): Promise<void> {
  const { binding } = responder;
  const unprompted = responder.reason === 'free_will';
  if (unprompted) context.lastFreeWillAt.set(message.channelId, Date.now());
  const stopTyping = keepTyping(channel);
  try {
    const capabilities = await context.anima.capabilities();
    const image = message.attachments.find((attachment) => attachment.contentType?.startsWith('image/'));
    const audio = message.attachments.find((attachment) => attachment.contentType?.startsWith('audio/') || message.flags.has(MessageFlags.IsVoiceMessage));
    let content = textOf(context, message);
    if (audio && !capabilities.chatAudio) {
      if (unprompted) return;
      await message.reply({ content: "I can't listen to voice messages yet: this Anima server has no speech-to-text. Please type instead.", allowedMentions: { repliedUser: false } });
      if (!content && !image) return;
    }
    if (!content && !image && !(audio && capabilities.chatAudio)) content = '*says nothing, waiting for you*';
    const voice = binding.voice_replies && capabilities.chatVoice;
    const reply = await context.anima.chat(binding.character.id, actorOf(message.author, message.member?.displayName, message.channel), {
      content,
      ...(image ? { attachment_url: image.url } : {}),
      ...(audio && capabilities.chatAudio ? { audio_url: audio.url } : {}),
      ...(voice ? { voice: true } : {}),
    });
    const files: AttachmentBuilder[] = [];
    if (voice && reply.audio_url) {
      try {
        const clip = await context.anima.fetchBytes(reply.audio_url, actorOf(message.author, message.member?.displayName, message.channel));
        files.push(new AttachmentBuilder(clip.bytes, { name: `${binding.character.slug}.${clip.contentType.includes('wav') ? 'wav' : clip.contentType.includes('ogg') ? 'ogg' : 'mp3'}` }));
      } catch (error) {
        context.logger.warn({ err: error }, 'could not fetch the spoken answer; posting text only');
      }
    }
    if (!reply.response.trim() && files.length === 0) return;
    const sent = await context.personas.post(channel, binding.character, reply.response, { files });
    context.remember(sent, message.channelId, { characterId: binding.character.id, slug: binding.character.slug, name: binding.character.name, text: reply.response });
  } catch (error) {
    if (unprompted) {
      context.logger.info({ err: error, characterId: binding.character.id }, 'an unprompted reply failed; staying quiet');
      return;
    }
    if (!(error instanceof AnimaApiError)) context.logger.warn({ err: error, characterId: binding.character.id }, 'answering failed');
    await message.reply({ ...describeError(error, context.config.setupUrl), allowedMentions: { repliedUser: false } }).catch((replyError: unknown) => {
      context.logger.warn({ err: replyError }, 'could not tell the user an answer failed');
    });
  } finally {
    stopTyping();
  }
}

/** The message as the character should read it: the bot's own mention removed, others as names. */
function textOf(context: BotContext, message: Message): string {
  const botId = context.client.user!.id;
  const withoutBot = message.content.replace(new RegExp(`<@!?${botId}>`, 'g'), ' ');
  return cleanContent(withoutBot, message.channel).replace(/\s+/g, ' ').trim();
}

/** The character a reply points at: one the bot remembers posting, or a webhook message with its name. */
function repliedCharacter(context: BotContext, message: Message, bindings: BindingView[]): string | undefined {
  const referenceId = message.reference?.messageId;
  if (!referenceId) return undefined;
  const remembered = context.spoken.get(referenceId);
  if (remembered) return remembered.characterId;
  const referenced = message.channel.messages.cache.get(referenceId);
  if (!referenced) return undefined;
  const byName = bindings.find((binding) => binding.character.name === referenced.author.username || referenced.content.startsWith(`**${binding.character.name}:**`));
  return referenced.webhookId || referenced.author.id === context.client.user!.id ? byName?.character.id : undefined;
}

function keepTyping(channel: SendableChannels): () => void {
  const type = () => void channel.sendTyping().catch(() => undefined);
  type();
  const timer = setInterval(type, TYPING_RENEW_MS);
  return () => clearInterval(timer);
}

async function handleLeakedKey(context: BotContext, message: Message): Promise<void> {
  let deleted = false;
  try {
    await message.delete();
    deleted = true;
  } catch (error) {
    context.logger.warn({ err: error, channelId: message.channelId }, 'could not delete a message that looks like an API key');
  }
  context.logger.info({ channelId: message.channelId, userId: message.author.id, deleted }, 'a message looking like an API key was removed');
  const warning = deleted
    ? `<@${message.author.id}>, I deleted your message because it looked like an API key. **Never post keys in Discord** — treat that key as leaked and revoke it at the provider. Add keys only on the setup page:`
    : `<@${message.author.id}>, your message looks like an API key and I could not delete it: please delete it yourself and revoke that key at the provider. Add keys only on the setup page:`;
  if (!message.channel.isSendable()) return;
  await message.channel.send({ content: warning, embeds: [setupEmbed(context.config.setupUrl)], allowedMentions: { users: [message.author.id] } });
}
