import type { Channel, Client, Message, User } from 'discord.js';
import type { Logger } from 'pino';
import { BoundedMap } from '../infra/bounded-map.js';
import type { BotConfig } from '../config.js';
import type { Actor, AnimaClient, BindingView } from './anima-client.js';
import type { PersonaPoster } from './personas.js';

/** Where a message or command happens, as bindings see it. */
export interface Place {
  /** The server, or "@me" for direct messages. */
  guildId: string;
  /** The bound channel: a thread's parent channel; undefined in DMs. */
  channelId: string | undefined;
  categoryId: string | undefined;
  isDirectMessage: boolean;
}

export function placeOf(channel: Channel): Place {
  if (channel.isDMBased()) return { guildId: '@me', channelId: undefined, categoryId: undefined, isDirectMessage: true };
  const guildId = channel.guildId;
  if (channel.isThread()) {
    const parent = channel.parent;
    return { guildId, channelId: channel.parentId ?? undefined, categoryId: parent?.parentId ?? undefined, isDirectMessage: false };
  }
  return { guildId, channelId: channel.id, categoryId: 'parentId' in channel ? (channel.parentId ?? undefined) : undefined, isDirectMessage: false };
}

/** The Discord user as Anima sees them: `discord:<id>`, display name, guild and channel. */
export function actorOf(user: User, displayName: string | null | undefined, channel: Channel): Actor {
  const direct = channel.isDMBased();
  return {
    discordUserId: user.id,
    displayName: displayName ?? user.globalName ?? user.username,
    guildId: direct ? null : channel.guildId,
    // A thread is its own conversation; in DMs the conversation is the user's own.
    channelId: direct ? null : channel.id,
  };
}


export interface SpokenMessage {
  characterId: string;
  slug: string;
  name: string;
  text: string;
}

/** Everything the message and command handlers share. */
export class BotContext {
  /** Which character wrote each message the bot posted (reply triggers, /voice). */
  readonly spoken = new BoundedMap<string, SpokenMessage>(10_000);
  /** Per channel: the character that spoke last, its last answer, and the last unprompted reply. */
  readonly lastAnswer = new BoundedMap<string, SpokenMessage>(5_000);
  readonly lastFreeWillAt = new BoundedMap<string, number>(5_000);
  private readonly bindingCache = new Map<string, { bindings: BindingView[]; expiresAt: number }>();

  constructor(
    readonly client: Client,
    readonly config: Readonly<BotConfig>,
    readonly anima: AnimaClient,
    readonly personas: PersonaPoster,
    readonly logger: Logger,
    readonly random: () => number,
  ) {}

  /** The characters bound to a place, cached for BOT_BINDINGS_CACHE_MS. */
  async bindingsFor(place: Place): Promise<BindingView[]> {
    const key = `${place.guildId}/${place.channelId ?? ''}/${place.categoryId ?? ''}`;
    const cached = this.bindingCache.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.bindings;
    const bindings = await this.anima.resolveBindings(place);
    this.bindingCache.set(key, { bindings, expiresAt: Date.now() + this.config.bindingsCacheMs });
    if (this.bindingCache.size > 10_000) this.bindingCache.delete(this.bindingCache.keys().next().value as string);
    return bindings;
  }

  /** After a change through /character: the guild's cached resolutions are stale. */
  forgetBindings(guildId: string): void {
    for (const key of this.bindingCache.keys()) if (key.startsWith(`${guildId}/`)) this.bindingCache.delete(key);
  }

  remember(messages: Message[], channelId: string, spoken: SpokenMessage): void {
    for (const message of messages) this.spoken.set(message.id, spoken);
    this.lastAnswer.set(channelId, spoken);
  }
}
