import { sql } from '../../infra/db/sql.js';
import { boolean, index, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/** What makes a bound character answer a message (per binding). */
export interface BindingTriggers {
  /** The bot user is @mentioned. */
  mention: boolean;
  /** The message replies to one of this character's messages. */
  reply: boolean;
  /** The character's name appears in the message (whole word, any case). */
  name: boolean;
  /** Any of these words or phrases appears in the message (whole word, any case). */
  words: string[];
  /** Every message in the place (busy channels: use with care). */
  everyMessage: boolean;
}

/** Unprompted replies: with this probability, at most once per cooldown per channel. Off by default. */
export interface BindingFreeWill {
  enabled: boolean;
  probability: number;
  cooldownSeconds: number;
}

/**
 * Which character answers where on a chat platform: a channel, a category (every channel in it),
 * or the whole server (neither set). Several characters may share one place.
 * The character foreign key (ON DELETE CASCADE) is declared in the migration, not here, so this
 * file does not import the characters' table (schema.ts re-exports both).
 */
export const channelBindings = pgTable(
  'channel_bindings',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    platform: text('platform').notNull(),
    guildId: text('guild_id').notNull(),
    channelId: text('channel_id'),
    categoryId: text('category_id'),
    characterId: uuid('character_id').notNull(),
    triggers: jsonb('triggers').$type<BindingTriggers>().notNull(),
    freeWill: jsonb('free_will').$type<BindingFreeWill>().notNull(),
    voiceReplies: boolean('voice_replies').notNull().default(false),
    createdByUserId: uuid('created_by_user_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('channel_bindings_place_character_idx').on(
      table.platform,
      table.guildId,
      sql`coalesce(${table.channelId}, '')`,
      sql`coalesce(${table.categoryId}, '')`,
      table.characterId,
    ),
    index('channel_bindings_guild_idx').on(table.platform, table.guildId),
  ],
);
