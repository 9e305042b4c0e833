import { and, eq, isNull, or } from 'drizzle-orm';
import { sql } from '../../infra/db/sql.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import { BoundedMap } from '../../infra/bounded-map.js';
import type { Events } from '../../infra/cache/cache.js';
import type { Database, Executor } from '../../infra/db/database.js';
import { memories } from '../../infra/db/schema.js';
import { AppError, NotFoundError, PayloadTooLargeError, ServiceUnavailableError, ValidationError } from '../../infra/http/errors.js';
import { DEFAULT_MAX_FETCH_BYTES, safeFetch } from '../../infra/http/safe-fetch.js';
import type { ChatContentPart, ChatMessage, ChatPassthrough, ChatToolCall, ChatToolCallDelta, ChatUsage } from '../../providers/chat/chat-model.js';
import type { ImageInput } from '../../providers/vision/gemini.js';
import { countTokens, resolveModelSettings, type Character, type CharactersService, type CharacterViewer, type ResolvedModelSettings } from '../characters/index.js';
import { ProviderCallError, type Lease, type ProviderGateway } from '../gateway/index.js';
import type { ResolvedProviderKey } from '../identity/key-resolution.js';
import type { UserRow } from '../identity/store.js';
import type { ConversationMemory, MemoryPlace } from '../memory/memory-port.js';
import type { ModerationService } from '../moderation/index.js';
import { usageReport, usageSummaryText } from '../usage/usage-report.js';
import { HELP_TEXT, parseCommand, parseImagine, type ChatCommand } from './commands.js';
import { draftPrompt, type BuiltPrompt } from './prompt-builder.js';
import { backoffDelay, warrantsFallback } from './retry-policy.js';
import { ConversationCache } from './conversation-cache.js';
import * as store from './store.js';
import type { ConversationRow, HistoryRow, MessageInsert } from './store.js';
import type { ChatVoicePort } from './voice-port.js';
import { TurnCancellation } from './turn-cancellation.js';

/** Token budgets of the prompt's parts; the rest of the model's context is left for the answer. */
export const HISTORY_TOKEN_BUDGET = 3_000;
export const LOREBOOK_TOKEN_BUDGET = 800;
/** Stored messages loaded before the token budget trims them. */
const HISTORY_ROW_LIMIT = 120;
const MAX_IMAGES_PER_MESSAGE = 4;
/** What an image description is expected to cost at most, for the reservation (two to four sentences). */
const VISION_DESCRIPTION_TOKENS = 300;
/** Conversations whose row and recent history a process keeps, and for how long without a change. */
const CONVERSATION_CACHE_ENTRIES = 2_000;
const CONVERSATION_CACHE_TTL_MS = 60_000;

export interface ChatServiceDependencies {
  config: Readonly<Config>;
  db: Database;
  logger: Logger;
  /** Tells other replicas which conversations changed (their cached history is dropped). */
  events?: Events | undefined;
  characters: CharactersService;
  /** Every provider call of a turn (the model, image descriptions) goes through it. */
  gateway: ProviderGateway;
  /** Long-term memory; absent when the memory module is not built (then turns run without it). */
  memory: ConversationMemory | undefined;
  moderation: ModerationService;
  /** Fetches an image URL; defaults to the SSRF-safe fetch. A test seam. */
  fetchImage?: (url: string, field: string, signal: AbortSignal) => Promise<ImageInput>;
  sleep?: (milliseconds: number, signal: AbortSignal) => Promise<void>;
  /** `!imagine <prompt>`: draws and answers with the picture (the images module); absent = not offered. */
  imagine?: ImagineCommand;
  /** Voice messages in and spoken answers out (the voice module); absent = text only. */
  voice?: ChatVoicePort | undefined;
}

/** What `!imagine` needs from the images module: the reply text (with the picture's URL). */
export type ImagineCommand = (request: { user: UserRow; character: Character; prompt: string; requestId: string; signal: AbortSignal }) => Promise<string>;

export interface TurnRequest {
  /** Character id or slug. */
  character: string;
  viewer: CharacterViewer;
  user: UserRow;
  guildId: string | undefined;
  channelId: string | undefined;
  text: string;
  /** Image URLs (http(s) or data:) attached to the message. */
  imageUrls: string[];
  /** The request fields the text and the images came from, named in 4xx errors. */
  contentField: string;
  imageField: string;
  clientSystemMessages: string[];
  clientHistory: ChatMessage[];
  temperature?: number | undefined;
  maxTokens?: number | undefined;
  /** OpenAI fields relayed to the vendor as they came (tools, response_format, stop, seed…). */
  passthrough?: ChatPassthrough | undefined;
  /**
   * The client sent tool results after the model's tool calls: the turn continues the client's
   * history (which ends with the tool messages) and has no new user message of its own.
   */
  toolContinuation?: boolean | undefined;
  /** Streamed answers hold one of the plan's concurrent-stream slots while they run. */
  stream?: boolean | undefined;
  /** Kept on the user's message (a voice message's audio reference and transcription). */
  messageMetadata?: Record<string, unknown> | undefined;
  signal: AbortSignal;
  requestId: string;
}

interface TurnBase {
  character: Character;
  conversation: ConversationRow;
  startedAt: number;
}

export type PreparedTurn =
  | (TurnBase & { kind: 'command'; command: ChatCommand; reply: string })
  | (TurnBase & {
      kind: 'model';
      request: TurnRequest;
      settings: ResolvedModelSettings;
      /** The turn's one gateway lease: the model call, its retries and fallbacks; settled or failed by run(). */
      lease: Lease<'chat'>;
      /**
       * The model call's cancellation: the client's signal, and aborted (with billing's error as its
       * reason) when the credit hold written as the call leaves fails (see `lease.confirm`).
       */
      cancellation: TurnCancellation;
      key: ResolvedProviderKey;
      prompt: BuiltPrompt;
      /**
       * The user's message, stored with the answer in the turn's one write (or alone, marked
       * `failed`, when no answer comes). Null for a tool continuation (no new user message).
       */
      userMessage: (MessageInsert & { id: string; createdAt: Date }) | null;
      userMessageId: string | null;
      memoriesUsed: number;
      /** The ids of the memories the prompt holds, best first. */
      memoryIds: string[];
      keySources: Record<string, 'user' | 'platform'>;
    });

export type ModelTurn = Extract<PreparedTurn, { kind: 'model' }>;

export interface TurnOutcome {
  text: string;
  status: 'complete' | 'partial' | 'blocked';
  finishReason: string;
  model: string;
  usage: ChatUsage;
  assistantMessageId: string | null;
  /** Set when the answer stopped early because the upstream failed after text reached the client. */
  error: Error | undefined;
  /** The client's tools the model called (OpenAI-compatible clients run them and send the results back). */
  toolCalls: ChatToolCall[] | undefined;
}

export interface RunOptions {
  /** Streaming: called with each piece of text as it may be shown. */
  onDelta?: (text: string) => void;
  /** Streaming: called with each tool-call fragment exactly as the vendor sent it. */
  onToolCallDelta?: (toolCalls: ChatToolCallDelta[]) => void;
}

export class ChatService {
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing = false;
  /** Chat requests between admit() and their end (see MAX_TURNS_IN_FLIGHT). */
  private turnsInFlight = 0;
  /** Conversation rows and recent history, per process, dropped across replicas on every change. */
  private readonly conversations: ConversationCache;

  constructor(private readonly dependencies: ChatServiceDependencies) {
    this.conversations = new ConversationCache({
      events: dependencies.events,
      ttlMs: CONVERSATION_CACHE_TTL_MS,
      maxEntries: CONVERSATION_CACHE_ENTRIES,
      historyLimit: HISTORY_ROW_LIMIT,
    });
  }

  async start(): Promise<void> {
    await this.conversations.start();
  }

  /** Some user's messages were erased outside a turn (a user deleted their data): nothing cached may still hold them. */
  async forgetCachedConversations(): Promise<void> {
    await this.conversations.changedAll();
  }

  get config(): Readonly<Config> {
    return this.dependencies.config;
  }

  /**
   * Everything before the model call: the character, the conversation, commands, moderation of
   * the input, the key, images, memories and the prompt; stores the user's message. Errors here
   * reach the client as ordinary HTTP errors.
   */
  async prepare(request: TurnRequest): Promise<PreparedTurn> {
    const { moderation, gateway } = this.dependencies;
    const startedAt = performance.now();
    this.assertInputSize(request);
    const { character, conversation } = await this.characterAndConversation(request);
    const imaginePrompt = request.imageUrls.length === 0 && !request.toolContinuation ? parseImagine(request.text) : undefined;
    if (imaginePrompt !== undefined && this.dependencies.imagine) {
      await moderation.checkInput(imaginePrompt, { userId: request.user.id, characterId: character.id });
      const reply = await this.dependencies.imagine({ user: request.user, character, prompt: imaginePrompt, requestId: request.requestId, signal: request.signal });
      return { kind: 'command', command: 'imagine', reply, character, conversation, startedAt };
    }
    const command = request.imageUrls.length === 0 && !request.toolContinuation ? parseCommand(request.text) : undefined;
    if (command) {
      const reply = await this.runCommand(command, character, conversation, request);
      return { kind: 'command', command, reply, character, conversation, startedAt };
    }
    if (!request.text.trim() && request.imageUrls.length === 0 && !request.toolContinuation) throw new ValidationError(request.contentField, 'The message is empty.');
    await moderation.checkInput(request.text, { userId: request.user.id, characterId: character.id });

    const resolved = resolveModelSettings(character, this.dependencies.config);
    const settings: ResolvedModelSettings = {
      ...resolved,
      temperature: request.temperature ?? resolved.temperature,
      maxTokens: request.maxTokens ?? resolved.maxTokens,
    };
    if (settings.provider === 'gemini' && request.passthrough?.tools?.length) {
      throw new ValidationError('tools', `${character.name} talks through Gemini, which does not take OpenAI tools here; use a character on an OpenAI-compatible provider.`);
    }
    const keySources: Record<string, 'user' | 'platform'> = {};

    const { imageParts, imageDescriptions } = await this.prepareImages(request, character, settings, keySources);
    const place = this.memoryPlace(character, request);
    // Recall runs while the rest is prepared: the history (cached, or read side by side with the
    // recall on PostgreSQL), the prompt without its memories, and the gateway's lease, whose credit
    // reservation counts the memory section at its budget (an upper bound; the settle charges what
    // the provider reports). The memory section goes into the prompt once recall answers.
    const recalling = this.recall(place, request.text);
    const newestFirst = await this.recentHistory(character.id, request, conversation);
    const history = [...newestFirst].reverse();
    // Speaker names go into the prompt only where more than one person talks in this conversation.
    const humans = new Set([request.user.id, ...history.flatMap((message) => (message.role === 'user' && message.speakerUserId ? [message.speakerUserId] : []))]);
    const draft = draftPrompt({
      character,
      userName: request.user.username ?? 'User',
      speakerName: request.user.username,
      history: history.map((message) => ({ role: message.role, content: message.content, speakerName: message.speakerName, tokenCount: message.tokenCount })),
      group: conversation.userId === null && humans.size > 1,
      clientSystemMessages: request.clientSystemMessages,
      clientHistory: request.clientHistory,
      newMessage: request.toolContinuation ? null : { text: request.text, imageParts, imageDescriptions },
      historyTokenBudget: HISTORY_TOKEN_BUDGET,
      lorebookTokenBudget: LOREBOOK_TOKEN_BUDGET,
      countTokens: countTokensOnce,
    });
    // One lease for the whole turn (retries and fallback models included): the key, billing's
    // authorization and, when the platform pays, a reservation for the prompt plus the answer's cap.
    // The reservation may be left for the call's start (holdAlongside): run() then writes it while
    // the model call is on its way (lease.confirm), and delivers nothing before it is held.
    const [recalled, leased] = await Promise.allSettled([
      recalling,
      gateway.begin({
        modality: 'chat',
        provider: settings.provider,
        service: 'chat',
        user: request.user,
        model: settings.model,
        estimate: { promptTokens: draft.estimateWithMemory(this.dependencies.memory ? this.dependencies.config.memory.tokenBudget : 0), maxCompletionTokens: settings.maxTokens },
        characterId: character.id,
        requestId: request.requestId,
        concurrent: request.stream === true,
        holdAlongside: true,
      }),
    ]);
    if (leased.status === 'rejected') throw leased.reason;
    const lease = leased.value;
    // recall() answers without memories on a memory fault; anything else ends the turn (and its lease) before the call.
    if (recalled.status === 'rejected') throw await lease.fail(recalled.reason);
    const prompt = draft.complete({ text: recalled.value.promptSection, tokens: recalled.value.promptTokens });
    keySources[settings.provider] = lease.key.source;
    // Written with the answer, in the turn's one write; its time is now, so it sorts before the answer.
    const userMessage = request.toolContinuation ? null : {
      id: randomUUID(),
      createdAt: new Date(),
      conversationId: conversation.id,
      role: 'user' as const,
      speakerUserId: request.user.id,
      speakerName: request.user.username,
      content: request.text,
      tokenCount: countTokensOnce(request.text),
      metadata: {
        ...(request.imageUrls.length > 0 ? { images: request.imageUrls.map((url) => (url.startsWith('data:') ? 'data:…' : url)) } : {}),
        ...(imageDescriptions.length > 0 ? { image_descriptions: imageDescriptions } : {}),
        ...request.messageMetadata,
        request_id: request.requestId,
      },
    };
    return {
      kind: 'model',
      request,
      character,
      conversation,
      startedAt,
      settings,
      lease,
      cancellation: new TurnCancellation(request.signal),
      key: lease.key,
      prompt,
      userMessage,
      userMessageId: userMessage?.id ?? null,
      memoriesUsed: recalled.value.memories.length,
      memoryIds: recalled.value.memories.map((memory) => memory.id),
      keySources,
    };
  }

  /**
   * The character (cached) and its conversation here. A cached character whose row is gone (the
   * database was recreated or restored behind a kept cache) fails the conversation's foreign key:
   * the stale entry is dropped everywhere and the lookup runs once more against the database.
   */
  private async characterAndConversation(request: TurnRequest): Promise<{ character: Character; conversation: ConversationRow }> {
    const { db, characters } = this.dependencies;
    const place = { userId: request.user.id, guildId: request.guildId, channelId: request.channelId };
    const character = await characters.get(request.character, request.viewer);
    const conversationOf = (characterId: string) =>
      this.conversations.conversation(conversationKey(characterId, place), () => store.findOrCreateConversation(db, characterId, place));
    try {
      return { character, conversation: await conversationOf(character.id) };
    } catch (error) {
      if (!store.isForeignKeyViolation(error)) throw error;
      this.dependencies.logger.warn({ characterId: character.id }, 'a cached character no longer exists in the database; dropping the cached copy');
      await characters.forget(character);
      const fresh = await characters.get(request.character, request.viewer);
      return { character: fresh, conversation: await conversationOf(fresh.id) };
    }
  }

  /** The conversation's recent messages, newest first (cached per process; see ConversationCache). */
  private recentHistory(characterId: string, place: Pick<TurnRequest, 'user' | 'guildId' | 'channelId'>, conversation: ConversationRow): Promise<HistoryRow[]> {
    const key = conversationKey(characterId, { userId: place.user.id, guildId: place.guildId, channelId: place.channelId });
    return this.conversations.history(key, conversation.id, () => store.recentMessages(this.dependencies.db, conversation, HISTORY_ROW_LIMIT));
  }

  /** MAX_MESSAGE_CHARS for the message, MAX_PROMPT_CHARS for everything the client sent: 413 naming the field. */
  private assertInputSize(request: TurnRequest): void {
    const { maxMessageChars, maxPromptChars } = this.dependencies.config;
    if (request.text.length > maxMessageChars) {
      throw new PayloadTooLargeError(`The message is ${request.text.length} characters long; at most ${maxMessageChars} are accepted.`, { extra: { field: request.contentField, limit: maxMessageChars } });
    }
    const total = request.text.length + request.clientSystemMessages.reduce((sum, text) => sum + text.length, 0) + request.clientHistory.reduce((sum, message) => sum + (typeof message.content === 'string' ? message.content.length : JSON.stringify(message.content).length), 0);
    if (total > maxPromptChars) {
      throw new PayloadTooLargeError(`The messages total ${total} characters; at most ${maxPromptChars} are accepted per request.`, { extra: { field: request.contentField, limit: maxPromptChars } });
    }
  }

  /**
   * The model call with retries (only while nothing reached the client) and fallback models,
   * output moderation, storage of the answer (partial when the client left or the upstream broke
   * mid-way), metering, and handing the exchange to memory.
   */
  async run(turn: ModelTurn, options: RunOptions = {}): Promise<TurnOutcome> {
    const work = this.runTracked(turn, options);
    this.inFlight.add(work);
    try {
      return await work;
    } finally {
      this.inFlight.delete(work);
    }
  }

  private async runTracked(turn: ModelTurn, options: RunOptions): Promise<TurnOutcome> {
    let outcome: TurnOutcome;
    // The credit hold is asked for as the call starts: on the embedded database its statement then
    // runs after the recall's and while the request is on its way. A failed hold cuts the call off.
    turn.lease.confirm().catch((error: unknown) => turn.cancellation.holdFailed(error));
    try {
      outcome = await this.attempt(turn, options);
    } catch (error) {
      // A credit hold that failed alongside the call ends the turn as a refusal before it would have:
      // nothing stored, nothing held (billing's error, e.g. 402, reaches the client).
      if (!turn.cancellation.holdHasFailed) await this.markUnanswered(turn);
      // Nothing settled: the reservation is released, a rejected key reported (a user's becomes 402).
      throw await turn.lease.fail(error);
    } finally {
      turn.cancellation.release();
    }
    if (outcome.assistantMessageId === null) await this.markUnanswered(turn);
    return outcome;
  }

  /**
   * A turn that produced no answer (the upstream failed, the client left before any text): its user
   * message becomes `failed`, kept for export and listings but left out of later prompts, so the
   * client's retry does not put the same message in the prompt twice.
   */
  private async markUnanswered(turn: ModelTurn): Promise<void> {
    if (!turn.userMessage) return;
    try {
      await store.insertMessage(this.dependencies.db, { ...turn.userMessage, status: 'failed' }, { touch: true });
    } catch (error) {
      this.dependencies.logger.warn({ err: error }, 'could not mark an unanswered message failed');
    }
  }

  private async attempt(turn: ModelTurn, options: RunOptions): Promise<TurnOutcome> {
    const { config, logger } = this.dependencies;
    const provider = turn.lease.adapter;
    const models = [turn.settings.model, ...turn.settings.fallbackModels.filter((model) => model !== turn.settings.model)];
    const streaming = options.onDelta !== undefined;
    let lastError: ProviderCallError | undefined;

    for (const model of models) {
      for (let attempt = 0; attempt <= config.upstreamMaxRetries; attempt += 1) {
        const progress: Progress = { text: '', delivered: 0, blockedCategory: undefined, toolCalls: undefined };
        try {
          const result = streaming ? await this.streamOnce(turn, model, provider, progress, options) : await this.completeOnce(turn, model, provider, progress);
          // Nothing is delivered or stored before the credit hold is (see lease.confirm).
          await turn.lease.confirm();
          return await this.finish(turn, { ...result, text: progress.text, toolCalls: progress.toolCalls }, progress.blockedCategory, undefined);
        } catch (error) {
          // A failed credit hold cut the call off (or failed it): billing's error ends the turn.
          await turn.lease.confirm();
          if (!(error instanceof ProviderCallError)) throw error;
          lastError = error;
          if (error.kind === 'aborted' || turn.request.signal.aborted) {
            return this.finish(turn, { model, finishReason: 'client_disconnected', usage: undefined, text: progress.text }, undefined, error, 'partial');
          }
          if (progress.delivered > 0) {
            // Text already reached the client: a retry would repeat it, so keep what was said.
            logger.warn({ err: error, model, delivered: progress.delivered }, 'upstream failed mid-answer');
            return this.finish(turn, { model, finishReason: 'error', usage: undefined, text: progress.text }, undefined, error, 'partial');
          }
          if (error.kind === 'rejected_key') throw error;
          if (!error.retryable || attempt === config.upstreamMaxRetries) break;
          const delay = backoffDelay(attempt, error);
          if (delay === undefined) break;
          logger.info({ model, attempt: attempt + 1, delay_ms: Math.round(delay), kind: error.kind, upstream_status: error.upstreamStatus }, 'retrying upstream chat call');
          await this.sleep(delay, turn.request.signal);
        }
      }
      if (!lastError || !warrantsFallback(lastError)) break;
      if (model !== models.at(-1)) logger.warn({ model, kind: lastError.kind }, 'chat model failed; trying the next fallback model');
    }
    throw lastError ?? new AppError(502, 'upstream_error', 'No chat model answered.');
  }

  private async completeOnce(
    turn: ModelTurn,
    model: string,
    provider: Lease<'chat'>['adapter'],
    progress: Progress,
  ): Promise<{ model: string; finishReason: string; usage: ChatUsage | undefined }> {
    const result = await provider.complete(this.chatRequest(turn, model), turn.key);
    progress.text = result.text;
    progress.toolCalls = result.toolCalls;
    progress.blockedCategory = this.dependencies.moderation.wouldBlock(result.text, 'output');
    return { model: result.model, finishReason: result.finishReason, usage: result.usage };
  }

  private async streamOnce(
    turn: ModelTurn,
    model: string,
    provider: Lease<'chat'>['adapter'],
    progress: Progress,
    options: RunOptions,
  ): Promise<{ model: string; finishReason: string; usage: ChatUsage | undefined }> {
    const onDelta = options.onDelta!;
    const events = provider.stream(this.chatRequest(turn, model), turn.key);
    for await (const event of events) {
      // The first delivery waits for the credit hold (written while the call was on its way).
      if (progress.delivered === 0) await turn.lease.confirm();
      if (event.type === 'tool_call_delta') {
        progress.toolCalls = mergeToolCallDeltas(progress.toolCalls ?? [], event.toolCalls);
        options.onToolCallDelta?.(event.toolCalls);
        progress.delivered += 1;
      } else if (event.type === 'delta') {
        const checkedUpTo = progress.text.length;
        progress.text += event.text;
        // Checked as the answer grows (the new text and what a match could have begun in before it),
        // so blocked text stops before more of it is shown; leaving the loop closes the generator,
        // which aborts the upstream call.
        const blocked = this.dependencies.moderation.wouldBlockGrown(progress.text, checkedUpTo, 'output');
        if (blocked) {
          progress.blockedCategory = blocked;
          return { model, finishReason: 'content_filter', usage: undefined };
        }
        onDelta(event.text);
        progress.delivered += 1;
      } else {
        return this.checkedWhole(progress, { model: event.model, finishReason: event.finishReason, usage: event.usage });
      }
    }
    return this.checkedWhole(progress, { model, finishReason: 'stop', usage: undefined });
  }

  /** The end of a stream: the whole answer checked once (for a policy match longer than the growing checks look back over), so it is not stored if blocked. */
  private checkedWhole<T extends { finishReason: string }>(progress: Progress, end: T): T {
    const blocked = this.dependencies.moderation.wouldBlock(progress.text, 'output');
    if (!blocked) return end;
    progress.blockedCategory = blocked;
    return { ...end, finishReason: 'content_filter' };
  }

  private chatRequest(turn: ModelTurn, model: string) {
    return {
      model,
      messages: turn.prompt.messages,
      temperature: turn.settings.temperature,
      maxTokens: turn.settings.maxTokens,
      ...(turn.request.passthrough ? { passthrough: turn.request.passthrough } : {}),
      signal: turn.cancellation.signal,
    };
  }

  private async finish(
    turn: ModelTurn,
    result: { model: string; finishReason: string; usage: ChatUsage | undefined; text: string; toolCalls?: ChatToolCall[] | undefined },
    blockedCategory: string | undefined,
    error: ProviderCallError | undefined,
    forcedStatus?: 'partial',
  ): Promise<TurnOutcome> {
    const { db, moderation, memory, logger } = this.dependencies;
    const subject = { userId: turn.request.user.id, characterId: turn.character.id };
    let text = result.text;
    let status: TurnOutcome['status'] = forcedStatus ?? 'complete';
    if (blockedCategory) {
      await moderation.checkOutput(result.text, subject);
      text = moderation.refusalFor(blockedCategory);
      status = 'blocked';
    }
    // Without the provider's figures (a cut stream, a client that left), meter our own count.
    // The stored answer's token count, made once; it is also the metered count when the provider gave none.
    const answerTokens = countTokens(text);
    const usage: ChatUsage = result.usage ?? { promptTokens: turn.prompt.estimatedTokens, completionTokens: text === result.text ? answerTokens : countTokens(result.text) };
    // The turn's writes commit together (one statement, else one transaction): what was delivered is
    // charged (a cut or abandoned stream included), usage recorded once by the gateway, and the answer
    // stored. Nothing inside the transaction may use another connection (the embedded database has one).
    const answered = !(text === '' && !result.toolCalls && status === 'partial');
    const userMessage = turn.userMessage;
    const assistantMessage: (MessageInsert & { id: string }) | undefined = answered
      ? {
          id: randomUUID(),
          // After the user's message, whatever the clocks say (the order of a conversation is created_at, then id).
          createdAt: new Date(Math.max(Date.now(), (userMessage?.createdAt.getTime() ?? 0) + 1)),
          conversationId: turn.conversation.id,
          role: 'assistant',
          speakerName: turn.character.name,
          content: text,
          tokenCount: answerTokens,
          status,
          metadata: {
            provider: turn.settings.provider,
            model: result.model,
            finish_reason: result.finishReason,
            request_id: turn.request.requestId,
            ...(result.toolCalls ? { tool_calls: result.toolCalls } : {}),
            ...(blockedCategory ? { blocked_category: blockedCategory } : {}),
          },
        }
      : undefined;
    const rows = [...(answered && userMessage ? [userMessage] : []), ...(assistantMessage ? [assistantMessage] : [])];
    // The messages go first: a conversation gone from the database (deleted through another replica
    // whose news has not arrived, a restored database) fails there, before anything is settled, and
    // the turn is written once more into the conversation the place has now.
    // The rows as stored: what the conversation cache keeps.
    let stored: HistoryRow[] = [];
    const metered = { model: result.model, promptTokens: usage.promptTokens, completionTokens: usage.completionTokens, providerCostUsd: usage.costUsd };
    const inTransaction = () =>
      db.transaction(async (executor) => {
        if (rows.length > 0) stored = (await store.writeTurn(executor, turn.conversation.id, rows)).stored;
        await turn.lease.settle(metered, { executor });
      });
    // Usually one statement (messages, charge and usage row as CTEs); where the settle needs more
    // (a charge above the reservation) or that statement fails for another reason than a conversation
    // gone, the same writes in a transaction, where a metering failure is logged instead of failing the turn.
    const write = async () => {
      const parts = turn.lease.settleParts(metered);
      if (parts) {
        let written: Awaited<ReturnType<typeof store.writeTurn>> | undefined;
        try {
          written = await store.writeTurn(db, turn.conversation.id, rows, parts);
        } catch (error) {
          if (rows.length > 0 && store.isForeignKeyViolation(error, store.MESSAGE_CONVERSATION_FOREIGN_KEY)) throw error;
          logger.warn({ err: error, conversationId: turn.conversation.id }, "the turn's one-statement write failed; writing it in a transaction");
        }
        if (written) {
          stored = written.stored;
          await parts.settled(written.creditsMicro);
          return;
        }
      }
      await inTransaction();
    };
    try {
      await write();
    } catch (writeError) {
      if (rows.length === 0 || !store.isForeignKeyViolation(writeError, store.MESSAGE_CONVERSATION_FOREIGN_KEY)) throw writeError;
      logger.warn({ conversationId: turn.conversation.id }, 'a cached conversation no longer exists in the database; writing the turn into the current one');
      await this.conversations.changed(turn.conversation.id);
      turn.conversation = (await this.characterAndConversation(turn.request)).conversation;
      for (const row of rows) row.conversationId = turn.conversation.id;
      await write();
    }
    if (stored.length > 0) await this.conversations.added(turn.conversation.id, stored);
    const assistantMessageId: string | null = assistantMessage?.id ?? null;
    if (status === 'complete' && assistantMessageId && turn.userMessageId && memory) {
      try {
        await memory.rememberExchange({
          ...this.memoryPlace(turn.character, turn.request),
          conversationId: turn.conversation.id,
          userMessageId: turn.userMessageId,
          assistantMessageId,
          provider: turn.settings.provider,
          chatModel: result.model,
        });
      } catch (memoryError) {
        // The user has the answer; a memory queue hiccup must not turn it into an error.
        logger.warn({ err: memoryError }, 'could not queue memory formation');
      }
    }
    return { text, status, finishReason: result.finishReason, model: result.model, usage, assistantMessageId, error, toolCalls: result.toolCalls };
  }

  /** Memories for the prompt; a failing memory store (e.g. an embedding provider down) costs the turn its memories, not the answer. */
  private async recall(place: MemoryPlace, text: string): Promise<{ memories: Array<{ id: string }>; promptSection: string; promptTokens: number }> {
    if (!this.dependencies.memory) return { memories: [], promptSection: '', promptTokens: 0 };
    try {
      return await this.dependencies.memory.recall(place, text, { tokenBudget: this.dependencies.config.memory.tokenBudget });
    } catch (error) {
      this.dependencies.logger.warn({ err: error, characterId: place.characterId }, 'memory recall failed; answering without memories');
      return { memories: [], promptSection: '', promptTokens: 0 };
    }
  }

  private memoryPlace(character: Character, request: Pick<TurnRequest, 'user' | 'guildId' | 'channelId'>): MemoryPlace {
    return { characterId: character.id, userId: request.user.id, guildId: request.guildId, channelId: request.channelId };
  }

  private async prepareImages(
    request: TurnRequest,
    character: Character,
    settings: ResolvedModelSettings,
    keySources: Record<string, 'user' | 'platform'>,
  ): Promise<{ imageParts: ChatContentPart[]; imageDescriptions: string[] }> {
    if (request.imageUrls.length === 0) return { imageParts: [], imageDescriptions: [] };
    if (request.imageUrls.length > MAX_IMAGES_PER_MESSAGE) throw new ValidationError(request.imageField, `At most ${MAX_IMAGES_PER_MESSAGE} images per message.`);
    if (settings.vision) {
      // The model sees the images itself; the provider fetches links, so nothing is fetched here.
      return { imageParts: request.imageUrls.map((url) => ({ type: 'image_url', image_url: { url } })), imageDescriptions: [] };
    }
    const { gateway, config } = this.dependencies;
    // Fetch first: a bad or unsafe URL is the client's mistake and is reported before any key question.
    const images: ImageInput[] = [];
    for (const url of request.imageUrls) images.push(await this.loadImage(url, request.imageField, request.signal));
    const imageDescriptions: string[] = [];
    for (const image of images) {
      const description = await gateway.call(
        {
          modality: 'vision',
          provider: 'gemini',
          service: 'vision',
          user: request.user,
          model: config.visionModel,
          estimate: { images: 1, maxCompletionTokens: VISION_DESCRIPTION_TOKENS },
          characterId: character.id,
          requestId: request.requestId,
        },
        async (vision, key) => {
          keySources.gemini = key.source;
          const described = await vision.describe(image, key, { model: config.visionModel, signal: request.signal });
          return { result: described, usage: { model: described.model, promptTokens: described.usage.promptTokens, completionTokens: described.usage.completionTokens } };
        },
      );
      imageDescriptions.push(description.text);
    }
    return { imageParts: [], imageDescriptions };
  }

  private async loadImage(url: string, field: string, signal: AbortSignal): Promise<ImageInput> {
    const dataUrl = /^data:(image\/[a-z0-9.+-]+);base64,([a-z0-9+/=\s]+)$/i.exec(url);
    if (dataUrl) {
      const bytes = Buffer.from(dataUrl[2]!, 'base64');
      if (bytes.length > DEFAULT_MAX_FETCH_BYTES) throw new PayloadTooLargeError('The image is larger than 10 MB.');
      return { bytes, mimeType: dataUrl[1]!.toLowerCase() };
    }
    if (url.startsWith('data:')) throw new ValidationError(field, 'Only base64 data: URLs of images are accepted.');
    if (this.dependencies.fetchImage) return this.dependencies.fetchImage(url, field, signal);
    const fetched = await safeFetch(url, { allowPrivate: this.dependencies.config.allowPrivateFetch, field, signal, timeoutMs: 15_000 });
    return { bytes: fetched.bytes, mimeType: fetched.contentType };
  }

  private async runCommand(command: ChatCommand, character: Character, conversation: ConversationRow, request: TurnRequest): Promise<string> {
    const { db, memory, config } = this.dependencies;
    const place = this.memoryPlace(character, request);
    switch (command) {
      case 'help':
        return HELP_TEXT;
      case 'imagine':
        return this.dependencies.imagine ? 'Tell me what to draw: !imagine <prompt>' : 'Image generation is not enabled on this server.';
      case 'wack': {
        await store.resetContext(db, conversation.id, new Date());
        await this.conversations.changed(conversation.id);
        return `Short-term context cleared: ${character.name} starts this conversation afresh. Earlier messages are kept for export.`;
      }
      case 'reset': {
        if (!memory) return 'Long-term memory is not enabled on this server, so there is nothing to forget.';
        const forgotten = await memory.forgetUser(character.id, request.user.id);
        return `${character.name} forgot ${forgotten} ${forgotten === 1 ? 'memory' : 'memories'} about you.`;
      }
      case 'sleep': {
        if (!memory) return 'Long-term memory is not enabled on this server.';
        const settings = resolveModelSettings(character, config);
        const changed = await memory.consolidateNow({ ...place, conversationId: conversation.id, provider: settings.provider, chatModel: settings.model });
        return `${character.name} slept on it: ${changed} ${changed === 1 ? 'memory' : 'memories'} formed or updated.`;
      }
      case 'usage':
        return usageSummaryText(await usageReport(db, request.user.id, 30));
      case 'voice': {
        if (!this.dependencies.voice) return 'Voice replies are not enabled on this server.';
        const on = !conversation.voiceReplies;
        await store.setVoiceReplies(db, conversation.id, on);
        await this.conversations.changed(conversation.id);
        if (!on) return `Voice replies are off: ${character.name} answers with text.`;
        return character.voiceId ? `Voice replies are on: ${character.name} answers with a voice clip too (!voice again to stop).` : `Voice replies are on, but ${character.name} has no voice yet: answers stay text until the character gets a voice_id.`;
      }
      case 'info': {
        const settings = resolveModelSettings(character, config);
        const counts = await store.countMessages(db, conversation.id);
        const memoryCount = await this.countMemories(character.id, request.user.id, request.guildId);
        return [
          `${character.name} (${character.slug})`,
          `Model: ${settings.model} via ${settings.provider}${settings.fallbackModels.length > 0 ? ` (fallbacks: ${settings.fallbackModels.join(', ')})` : ''}`,
          `This conversation: ${counts.total} messages, ${counts.sinceReset} in the current context`,
          `Memories: ${memoryCount}`,
        ].join('\n');
      }
    }
  }

  /** Memories that apply to this user with this character: core, theirs, and their server's. */
  private async countMemories(characterId: string, userId: string, guildId: string | undefined): Promise<number> {
    const [row] = await this.dependencies.db
      .select({ count: sql<number>`count(*)::int` })
      .from(memories)
      .where(
        and(
          eq(memories.characterId, characterId),
          or(eq(memories.scope, 'core'), eq(memories.userId, userId), guildId ? and(eq(memories.scope, 'group'), eq(memories.guildId, guildId)) : undefined),
          or(isNull(memories.expiresAt), sql`${memories.expiresAt} > now()`),
        ),
      );
    return Number(row?.count ?? 0);
  }

  // ---- conversations API ----

  /**
   * The start-up warm-up's turn (src/modules/warm-up.ts) on `db`, the warm-up's transaction: the
   * place's conversation found and made, its history read, and an exchange written — the foreign
   * keys' check plans are prepared by that real write. Through the store only (no cache, no events).
   */
  async warmUp(db: Executor, place: { characterId: string; userId: string }): Promise<void> {
    const conversation = await store.findOrCreateConversation(db, place.characterId, { userId: place.userId, guildId: undefined, channelId: undefined });
    await store.recentMessages(db, conversation, HISTORY_ROW_LIMIT);
    const now = Date.now();
    const message = (role: 'user' | 'assistant', offset: number): MessageInsert & { id: string } => ({
      id: randomUUID(),
      conversationId: conversation.id,
      role,
      speakerUserId: role === 'user' ? place.userId : null,
      content: role === 'user' ? 'Hello there.' : 'Hello! How are you today?',
      tokenCount: 4,
      createdAt: new Date(now + offset),
    });
    await store.writeTurn(db, conversation.id, [message('user', 0), message('assistant', 1)]);
  }

  async listConversations(user: UserRow | undefined, options: { limit: number; cursor: string | undefined }) {
    const rows = await store.listConversations(this.dependencies.db, user?.id, { limit: options.limit + 1, afterConversationId: this.decodeCursor(options.cursor) });
    const page = rows.slice(0, options.limit);
    return { data: page, nextCursor: rows.length > options.limit && page.length > 0 ? encodeCursor(page.at(-1)!.id) : null };
  }

  /** The conversation when the caller may see it; 404 otherwise (never 403: existence is not revealed). */
  async conversationFor(conversationId: string, user: UserRow | undefined): Promise<ConversationRow> {
    if (!UUID_PATTERN.test(conversationId)) throw new NotFoundError('Conversation');
    const conversation = await store.findConversation(this.dependencies.db, conversationId);
    if (!conversation) throw new NotFoundError('Conversation');
    if (user && !(await store.isParticipant(this.dependencies.db, conversation, user.id))) throw new NotFoundError('Conversation');
    return conversation;
  }

  /** A page of messages; in a shared channel a member sees the conversation from their own first message on. */
  async listMessages(conversation: ConversationRow, options: { limit: number; cursor: string | undefined; viewerUserId?: string | undefined }) {
    const rows = await store.listMessages(this.dependencies.db, conversation.id, {
      limit: options.limit + 1,
      afterMessageId: this.decodeCursor(options.cursor),
      visibleToUserId: conversation.userId === null ? options.viewerUserId : undefined,
    });
    const page = rows.slice(0, options.limit);
    return { data: page, nextCursor: rows.length > options.limit && page.length > 0 ? encodeCursor(page.at(-1)!.id) : null };
  }

  async resetConversation(conversation: ConversationRow): Promise<ConversationRow> {
    const reset = await store.resetContext(this.dependencies.db, conversation.id, new Date());
    await this.conversations.changed(conversation.id);
    return reset ?? conversation;
  }

  async deleteConversation(conversation: ConversationRow): Promise<void> {
    await store.deleteConversation(this.dependencies.db, conversation.id);
    await this.conversations.changed(conversation.id);
  }

  private decodeCursor(cursor: string | undefined): string | undefined {
    if (cursor === undefined) return undefined;
    const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
    if (!UUID_PATTERN.test(decoded)) throw new ValidationError('query.cursor', 'The cursor is not one this API gave out.');
    return decoded;
  }

  private sleep(milliseconds: number, signal: AbortSignal): Promise<void> {
    if (this.dependencies.sleep) return this.dependencies.sleep(milliseconds, signal);
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, milliseconds);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }

  /**
   * Counts a chat turn in (MAX_TURNS_IN_FLIGHT per process): beyond it the request gets a 503 with
   * Retry-After at once instead of waiting behind every turn already queued for the database.
   * Returns what to call when the turn is over.
   */
  admit(): () => void {
    const limit = this.dependencies.config.maxTurnsInFlight;
    if (limit > 0 && this.turnsInFlight >= limit) {
      throw new ServiceUnavailableError(`This server is answering ${limit} turns at once, its limit; retry in a moment.`, {
        headers: { 'retry-after': '1' },
        extra: { limit, retry_after: 1 },
      });
    }
    this.turnsInFlight += 1;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.turnsInFlight -= 1;
    };
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Waits for turns still running (streams finishing within the shutdown grace) so their answers are stored before the database closes. */
  async close(): Promise<void> {
    this.closing = true;
    const deadline = new Promise((resolve) => setTimeout(resolve, this.dependencies.config.shutdownGraceMs).unref());
    await Promise.race([Promise.allSettled([...this.inFlight]), deadline]);
    await this.conversations.close();
  }
}

interface Progress {
  text: string;
  delivered: number;
  blockedCategory: string | undefined;
  toolCalls: ChatToolCall[] | undefined;
}

/** Streamed tool-call fragments merged by index (id, type and name come first; arguments accumulate). */
function mergeToolCallDeltas(calls: ChatToolCall[], deltas: ChatToolCallDelta[]): ChatToolCall[] {
  const merged = [...calls];
  for (const delta of deltas) {
    const current = merged[delta.index] ?? { id: '', type: 'function' as const, function: { name: '', arguments: '' } };
    merged[delta.index] = {
      id: delta.id ?? current.id,
      type: 'function',
      function: { name: delta.function?.name ?? current.function.name, arguments: current.function.arguments + (delta.function?.arguments ?? '') },
    };
  }
  return merged;
}

/**
 * Token counts by text, remembered per process: a turn counts the same texts more than once (the
 * message for the prompt and for storage) and every turn of a character counts its system prompt.
 */
const TOKEN_COUNT_MEMO_ENTRIES = 4_000;
const TOKEN_COUNT_MEMO_MAX_CHARS = 32_000;
const tokenCountMemo = new BoundedMap<string, number>(TOKEN_COUNT_MEMO_ENTRIES);

export function countTokensOnce(text: string): number {
  if (text.length > TOKEN_COUNT_MEMO_MAX_CHARS) return countTokens(text);
  const known = tokenCountMemo.get(text);
  if (known !== undefined) return known;
  const counted = countTokens(text);
  tokenCountMemo.set(text, counted);
  return counted;
}

/** The cache key of a character's conversation at a place. */
function conversationKey(characterId: string, place: store.Place): string {
  return `${characterId}|${store.placeKey(place)}`;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}
