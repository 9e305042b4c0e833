import { DiscordAPIError, type AttachmentBuilder, type Client, type Message, type SendableChannels, type Webhook } from 'discord.js';
import type { Logger } from 'pino';
import { DISCORD_MESSAGE_LIMIT, splitMessage } from './text.js';

export interface Persona {
  name: string;
  avatar_url: string | null;
}

/** How long the bot believes a channel without Manage Webhooks before trying a webhook again. */
const NO_WEBHOOK_RETRY_MS = 10 * 60_000;
/** The one webhook per channel the bot creates and reuses for every character. */
export const WEBHOOK_NAME = 'Anima';

/**
 * Posts a character's answer as that character: through the channel's one webhook with the
 * character's name and avatar per message (webhooks are capped at 15 per channel, so one serves
 * every character), in threads through the parent's webhook with `thread_id`. Without Manage
 * Webhooks, or in DMs, it falls back to the bot's own messages prefixed with the character's name.
 */
export class PersonaPoster {
  private readonly webhooks = new Map<string, Promise<Webhook>>();
  private readonly noWebhookUntil = new Map<string, number>();

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
  ) {}

  /** Posts `text` (split at 2,000 characters) with `files` on the last part; returns the posted messages. */
  async post(channel: SendableChannels, persona: Persona, text: string, options: { files?: AttachmentBuilder[]; prefixInDirectMessages?: boolean } = {}): Promise<Message[]> {
    const files = options.files ?? [];
    const target = webhookTarget(channel);
    if (target && (this.noWebhookUntil.get(target.parentId) ?? 0) <= Date.now()) {
      try {
        return await this.postThroughWebhook(target, persona, text, files);
      } catch (error) {
        if (!isMissingPermissions(error)) throw error;
        this.logger.info({ channelId: target.parentId }, 'no Manage Webhooks here: answering as the bot, prefixed with the character name');
        this.noWebhookUntil.set(target.parentId, Date.now() + NO_WEBHOOK_RETRY_MS);
        this.webhooks.delete(target.parentId);
      }
    }
    const prefix = channel.isDMBased() && !options.prefixInDirectMessages ? '' : `**${persona.name}:** `;
    const parts = splitMessage(text, DISCORD_MESSAGE_LIMIT - prefix.length);
    const sent: Message[] = [];
    for (const [index, part] of (parts.length > 0 ? parts : ['…']).entries()) {
      const last = index === parts.length - 1 || parts.length === 0;
      sent.push(await channel.send({ content: `${prefix}${part}`, files: last ? files : [], allowedMentions: { parse: [] } }));
    }
    return sent;
  }

  private async postThroughWebhook(target: WebhookTarget, persona: Persona, text: string, files: AttachmentBuilder[]): Promise<Message[]> {
    const parts = splitMessage(text);
    const sent: Message[] = [];
    for (const [index, part] of (parts.length > 0 ? parts : ['…']).entries()) {
      const last = index === Math.max(parts.length - 1, 0);
      const send = async (webhook: Webhook) =>
        webhook.send({
          content: part,
          username: personaName(persona.name),
          ...(persona.avatar_url ? { avatarURL: persona.avatar_url } : {}),
          ...(target.threadId ? { threadId: target.threadId } : {}),
          files: last ? files : [],
          allowedMentions: { parse: [] },
        });
      let webhook = await this.webhookFor(target);
      try {
        sent.push(await send(webhook));
      } catch (error) {
        if (!isUnknownWebhook(error)) throw error;
        // Someone deleted the webhook: make a new one and post again.
        this.logger.info({ channelId: target.parentId }, 'the channel webhook was deleted: recreating it');
        this.webhooks.delete(target.parentId);
        webhook = await this.webhookFor(target);
        sent.push(await send(webhook));
      }
    }
    return sent;
  }

  private async webhookFor(target: WebhookTarget): Promise<Webhook> {
    let pending = this.webhooks.get(target.parentId);
    if (!pending) {
      // One lookup per channel at a time: concurrent answers share it instead of creating two webhooks.
      pending = this.findOrCreate(target);
      this.webhooks.set(target.parentId, pending);
      pending.catch(() => this.webhooks.delete(target.parentId));
    }
    return pending;
  }

  private async findOrCreate(target: WebhookTarget): Promise<Webhook> {
    const existing = await target.parent.fetchWebhooks();
    const ours = [...existing.values()].find((webhook) => webhook.token !== null && (webhook.owner?.id === this.client.user?.id || webhook.applicationId === this.client.application?.id));
    if (ours) return ours;
    return target.parent.createWebhook({ name: WEBHOOK_NAME, reason: 'Anima characters post here with their own names and avatars' });
  }
}

interface WebhookTarget {
  parentId: string;
  parent: { fetchWebhooks(): Promise<Map<string, Webhook>>; createWebhook(options: { name: string; reason?: string }): Promise<Webhook> };
  threadId: string | undefined;
}

function webhookTarget(channel: SendableChannels): WebhookTarget | undefined {
  if (channel.isDMBased()) return undefined;
  if (channel.isThread()) {
    const parent = channel.parent;
    if (parent && 'fetchWebhooks' in parent && 'createWebhook' in parent) {
      return { parentId: parent.id, parent: parent as unknown as WebhookTarget['parent'], threadId: channel.id };
    }
    return undefined;
  }
  if ('fetchWebhooks' in channel && 'createWebhook' in channel) {
    return { parentId: channel.id, parent: channel as unknown as WebhookTarget['parent'], threadId: undefined };
  }
  return undefined;
}

/** Webhook names may not contain "discord" or "clyde" and are 1–80 characters. */
export function personaName(name: string): string {
  const cleaned = name.replace(/discord/gi, 'Dscord').replace(/clyde/gi, 'Clyd3').trim().slice(0, 80);
  return cleaned || 'Character';
}

function isMissingPermissions(error: unknown): boolean {
  return error instanceof DiscordAPIError && (error.code === 50013 || error.status === 403);
}

function isUnknownWebhook(error: unknown): boolean {
  return error instanceof DiscordAPIError && (error.code === 10015 || error.code === 50027);
}
