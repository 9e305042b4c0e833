import type { ProviderName } from '../../config.js';

/**
 * The seam between the conversation engine and long-term memory. The chat module asks for
 * context before a turn and hands each finished exchange over; the memory module owns the rest.
 */

export interface MemoryPlace {
  characterId: string;
  /** The internal user id of the speaker. */
  userId: string;
  /** Set in a server (guild) channel; group memories of that server then apply. */
  guildId: string | undefined;
  channelId: string | undefined;
}

export interface RecalledMemory {
  id: string;
  scope: 'core' | 'user' | 'group';
  content: string;
  score: number;
}

export interface RecallResult {
  memories: RecalledMemory[];
  /** Ready-to-insert prompt text, each memory labelled by its source, within the token budget. */
  promptSection: string;
  /** promptSection's token count (never above the budget asked for), so the turn need not count it again. */
  promptTokens: number;
}

export interface FinishedExchange extends MemoryPlace {
  conversationId: string;
  userMessageId: string;
  assistantMessageId: string;
  /** The provider of the chat turn; formation's model call goes to it again, through the gateway. */
  provider: ProviderName | undefined;
  chatModel: string;
}

export interface ConversationMemory {
  recall(place: MemoryPlace, query: string, options?: { tokenBudget?: number; limit?: number }): Promise<RecallResult>;
  /** Queues memory formation for this exchange (background job); returns at once. */
  rememberExchange(exchange: FinishedExchange): Promise<void>;
  /** `!sleep`: form memories from this conversation now. Returns how many memories changed. */
  consolidateNow(place: MemoryPlace & { conversationId: string; provider: ProviderName | undefined; chatModel: string }): Promise<number>;
  /** `!reset`: delete this user's memories with this character. Returns how many were deleted. */
  forgetUser(characterId: string, userId: string): Promise<number>;
}
