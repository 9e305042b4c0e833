import { eq } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { ProviderName } from '../../config.js';
import type { Database } from '../../infra/db/database.js';
import { users } from '../../infra/db/schema.js';
import type { ChatMessage, ChatResult } from '../../providers/chat/chat-model.js';
import type { ProviderGateway } from '../gateway/index.js';

const CHAT_PROVIDERS: ReadonlySet<string> = new Set(['openrouter', 'openai', 'xai', 'gemini']);

export interface MemoryModelRequest {
  /** Who the work is for: their key (or the platform's, where their plan allows) pays. */
  userId: string;
  characterId: string;
  provider: string;
  model: string;
  messages: ChatMessage[];
  maxTokens: number;
  /** Names the work in logs: "memory formation", "conversation summary". */
  purpose: string;
}

/**
 * The one model call of background memory work (formation, summaries), through the gateway like
 * every provider call: metered as service `memory`, authorized by billing, settled once. It
 * answers undefined whenever the model cannot be used (no key, not authorized, a failed call), and
 * the caller then stores its no-model fallback, so nothing said is lost. A failure still ends the
 * lease properly: the reservation is released and a key the vendor rejected is reported (a user's
 * is marked invalid, so the next turn asks for a working one) — never silently swallowed.
 */
export class MemoryModel {
  constructor(
    private readonly dependencies: {
      gateway: ProviderGateway | undefined;
      db: Database;
      logger: Logger;
      countTokens: (text: string) => number;
    },
  ) {}

  async complete(request: MemoryModelRequest): Promise<ChatResult | undefined> {
    const { gateway, db, logger, countTokens } = this.dependencies;
    if (!gateway || !CHAT_PROVIDERS.has(request.provider)) return undefined;
    const [user] = await db.select().from(users).where(eq(users.id, request.userId)).limit(1);
    if (!user) return undefined;
    const provider = request.provider as ProviderName;
    const promptTokens = request.messages.reduce((total, message) => total + (typeof message.content === 'string' ? countTokens(message.content) : 0), 0);
    let lease;
    try {
      lease = await gateway.begin({
        modality: 'chat',
        provider,
        service: 'memory',
        user,
        model: request.model,
        // Remembering is a plan feature: a plan without it gets no formation or summary call.
        feature: 'long_term_memory',
        estimate: { promptTokens, maxCompletionTokens: request.maxTokens },
        characterId: request.characterId,
      });
    } catch (error) {
      logger.info({ provider, reason: error instanceof Error ? error.message : String(error) }, `no usable key or allowance for ${request.purpose}; storing a fallback instead`);
      return undefined;
    }
    let result: ChatResult;
    try {
      result = await lease.adapter.complete({ model: request.model, messages: request.messages, temperature: 0, maxTokens: request.maxTokens }, lease.key);
    } catch (error) {
      const reported = await lease.fail(error);
      logger.warn({ provider, reason: reported instanceof Error ? reported.message : String(reported) }, `${request.purpose} call failed; storing a fallback instead`);
      return undefined;
    }
    await lease.settle({ model: result.model || request.model, promptTokens: result.usage.promptTokens, completionTokens: result.usage.completionTokens, providerCostUsd: result.usage.costUsd });
    return result;
  }
}
