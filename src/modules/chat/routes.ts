import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import { normalizeError } from '../../infra/http/error-handler.js';
import { AppError, ValidationError } from '../../infra/http/errors.js';
import { openAiErrorSchema, problemResponses, problemSchema } from '../../infra/http/schemas.js';
import type { ChatMessage, ChatToolCallDelta } from '../../providers/chat/chat-model.js';
import type { CharactersService } from '../characters/index.js';
import { actingActor, endUserContext, optionalActingUser, requirePrincipal } from '../identity/auth.js';
import { assertMayVouchForPlace } from '../identity/authorization.js';
import type { IdentityService } from '../identity/service.js';
import { markIdempotencyFailed } from '../idempotency/index.js';
import type { UserRow } from '../identity/store.js';
import { textOf } from './prompt-builder.js';
import {
  botChatBodySchema,
  botChatResponseSchema,
  conversationSchema,
  messageListSchemaFor,
  modelListSchema,
  openAiChatBodySchema,
  openAiCompletionSchema,
  presentConversation,
  presentMessage,
} from './schemas.js';
import type { ChatService, PreparedTurn, TurnOutcome } from './service.js';
import type { ChatVoicePort } from './voice-port.js';
import { SseWriter } from './sse-writer.js';
import { hearVoiceMessage, inputAudioOf, speakAnswer, voiceBodyLimit, withoutAudio, withTranscript } from './voice-turn.js';

export interface ChatRoutesDependencies {
  chat: ChatService;
  identity: IdentityService;
  characters: CharactersService;
  /** Silence on an open stream after which a keep-alive comment is sent. */
  keepAliveMs: number;
  /** Voice messages in, spoken answers out (the voice module); absent = text only. */
  voice?: ChatVoicePort | undefined;
}

const MODEL_PATTERN = /^(?:character|shapesinc)\/(.+)$/;
const conversationParams = z.object({ id: z.string().min(1).max(100) });
const pageQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: z.string().max(200).optional() });
const chatProblemResponses = { ...problemResponses, 402: problemSchema, 413: problemSchema, 502: problemSchema, 503: problemSchema, 504: problemSchema };
const openAiErrorResponses = { 400: openAiErrorSchema, 401: openAiErrorSchema, 402: openAiErrorSchema, 404: openAiErrorSchema, 422: openAiErrorSchema, 429: openAiErrorSchema, 502: openAiErrorSchema, 503: openAiErrorSchema, 504: openAiErrorSchema };

/** An AbortSignal that fires when the client goes away before the answer was fully written. */
function clientSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client closed the connection'));
  });
  return controller.signal;
}

function usageOf(outcome: TurnOutcome | undefined) {
  const prompt = outcome?.usage.promptTokens ?? 0;
  const completion = outcome?.usage.completionTokens ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, cost_usd: outcome?.usage.costUsd ?? null };
}

export function registerChatRoutes(app: AppInstance, dependencies: ChatRoutesDependencies): void {
  const { chat, identity, characters, keepAliveMs } = dependencies;
  const { voice } = dependencies;
  const bodyLimit = voiceBodyLimit(voice, chat.config.bodyLimitBytes, chat.config.voice.audioInputMaxBytes);

  /**
   * The acting user, the authorization actor and the place of a chat turn. Only a service or admin
   * key may place the user in a channel or server (403 for a user key that names one).
   */
  const turnContext = async (request: FastifyRequest, body: { user_id?: string | undefined; username?: string | undefined; guild_id?: string | undefined; channel_id?: string | undefined }) => {
    const { actor, user } = await actingActor(identity, request, body);
    if (!user) throw new ValidationError('X-User-Id', 'This endpoint acts for an end user: send X-User-Id.');
    const context = endUserContext(request, body);
    const place = { guildId: body.guild_id ?? context.guildId, channelId: body.channel_id ?? context.channelId };
    assertMayVouchForPlace(actor, place);
    return { user, viewer: actor, ...place };
  };

  const botResponse = (turn: PreparedTurn, outcome: TurnOutcome | undefined): z.infer<typeof botChatResponseSchema> => {
    const usage = usageOf(outcome);
    return {
      response: turn.kind === 'command' ? turn.reply : (outcome?.text ?? ''),
      character_id: turn.character.id,
      conversation_id: turn.conversation.id,
      message_id: outcome?.assistantMessageId ?? null,
      memories_used: turn.kind === 'model' ? turn.memoriesUsed : 0,
      memory_ids: turn.kind === 'model' ? turn.memoryIds : [],
      processing_time: Math.round(performance.now() - turn.startedAt) / 1000,
      tokens_used: usage.total_tokens,
      usage,
      api_keys_status: turn.kind === 'model' ? turn.keySources : {},
      status: outcome?.status ?? 'complete',
      command: turn.kind === 'command' ? turn.command : null,
    };
  };

  /** Problem details for an error that happens after the stream opened. */
  const streamError = (error: unknown) => {
    const normalized = normalizeError(error);
    return { status: normalized.status, code: normalized.code, message: normalized.message };
  };

  app.post(
    '/v1/characters/:id/chat',
    {
      bodyLimit,
      config: { rateLimit: true, contextHeaders: 'place', idempotency: true, endUserField: 'user_id' },
      schema: {
        tags: ['chat'],
        summary: 'Talk to a character (the bot protocol); stream: true answers Server-Sent Events',
        description:
          'SSE events: {"type":"delta","content"} per piece of text, then {"type":"done", …the JSON answer}; {"type":"replace","content"} when the content policy withheld the answer (show the refusal instead of the deltas); {"type":"error","error":{status,code,message}} when the answer broke off (what was said is stored as partial).',
        params: z.object({ id: z.string().min(1).max(100) }),
        body: botChatBodySchema,
        response: { 200: botChatResponseSchema, ...chatProblemResponses },
      },
    },
    async (request, reply) => {
      // Past the turns this process may run at once, a quick 503 instead of a queue that grows for minutes.
      const leave = chat.admit();
      try {
        const body = request.body;
        const { user, viewer, guildId, channelId } = await turnContext(request, body);
        const signal = clientSignal(reply);
        const heard = await hearVoiceMessage(voice, { user, message: body.audio_url ? { kind: 'url', url: body.audio_url } : undefined, field: 'audio_url', requestId: request.id, signal, assertCharacter: () => characters.get(request.params.id, viewer) });
        const turn = await chat.prepare({
          character: request.params.id,
          viewer,
          user,
          guildId,
          channelId,
          text: withTranscript(body.content, heard),
          messageMetadata: heard?.metadata,
          imageUrls: body.attachment_url ? [body.attachment_url] : [],
          contentField: 'content',
          imageField: 'attachment_url',
          clientSystemMessages: [],
          clientHistory: [],
          stream: body.stream,
          signal,
          requestId: request.id,
        });
        const spoken = (outcome: TurnOutcome | undefined) => speakAnswer(voice, turn, outcome, { user, requested: body.voice, requestId: request.id, http: request, signal });
        const voiceFields = async (outcome: TurnOutcome | undefined) => ({ ...(heard ? { transcript: heard.text } : {}), ...(await spoken(outcome)) });
        if (!body.stream) {
          const outcome = turn.kind === 'model' ? await chat.run(turn) : undefined;
          return { ...botResponse(turn, outcome), ...(await voiceFields(outcome)) };
        }
        const writer = new SseWriter(reply, keepAliveMs);
        if (turn.kind === 'command') {
          writer.data({ type: 'delta', content: turn.reply });
          writer.data({ type: 'done', ...botResponse(turn, undefined), ...(await voiceFields(undefined)) });
          writer.end();
          return reply;
        }
        writer.startKeepAlive();
        try {
          const outcome = await chat.run(turn, { onDelta: (text) => writer.data({ type: 'delta', content: text }) });
          if (!outcome.assistantMessageId) markIdempotencyFailed(request);
          if (outcome.status === 'blocked') writer.data({ type: 'replace', content: outcome.text });
          if (outcome.error) writer.data({ type: 'error', error: streamError(outcome.error), partial: botResponse(turn, outcome) });
          else writer.data({ type: 'done', ...botResponse(turn, outcome), ...(await voiceFields(outcome)) });
        } catch (error) {
          markIdempotencyFailed(request);
          writer.stopKeepAlive();
          if (!writer.isOpen) throw error;
          request.log.warn({ err: error }, 'chat stream failed after it opened');
          writer.data({ type: 'error', error: streamError(error) });
        }
        writer.end();
        return reply;
      } finally {
        leave();
      }
    },
  );

  app.post(
    '/v1/chat/completions',
    {
      bodyLimit,
      config: { rateLimit: true, contextHeaders: 'place', idempotency: true, endUserField: 'user' },
      schema: {
        tags: ['openai'],
        summary: 'OpenAI-compatible chat with a character: model "character/<slug>"',
        body: openAiChatBodySchema,
        response: { 200: openAiCompletionSchema, ...openAiErrorResponses },
      },
    },
    async (request, reply) => {
      // Past the turns this process may run at once, a quick 503 instead of a queue that grows for minutes.
      const leave = chat.admit();
      try {
        const body = request.body;
        const slug = MODEL_PATTERN.exec(body.model)?.[1];
        if (!slug) {
          throw new AppError(404, 'model_not_found', `The model "${body.model}" does not exist here: use "character/<slug>" (GET /v1/models lists them).`, { extra: { field: 'model' } });
        }
        if (body.n !== undefined && body.n > 1) throw new ValidationError('n', 'A character gives one answer per request: n must be 1 (send several requests for several answers).');
        const { user, viewer, guildId, channelId } = await turnContext(request, { user_id: body.user });
        const last = body.messages.at(-1)!;
        if (last.role !== 'user' && last.role !== 'tool') throw new ValidationError('messages', 'The last message must be the user\'s (or tool results answering the model\'s tool calls).');
        // After tool results the whole client history goes to the model, ending with those results.
        const toolContinuation = last.role === 'tool';
        const clientSystemMessages: string[] = [];
        const clientHistory: ChatMessage[] = [];
        for (const message of toolContinuation ? body.messages : body.messages.slice(0, -1)) {
          const text = textOf(withoutAudio(message.content));
          if (message.role === 'system' || message.role === 'developer') clientSystemMessages.push(text);
          else if (message.role === 'tool') {
            if (!message.tool_call_id) throw new ValidationError('messages', 'A tool message needs tool_call_id (the id of the call it answers).');
            clientHistory.push({ role: 'tool', content: text, tool_call_id: message.tool_call_id });
          } else if (message.role === 'assistant' && message.tool_calls?.length) {
            clientHistory.push({ role: 'assistant', content: message.content === null ? null : text, tool_calls: message.tool_calls });
          } else clientHistory.push({ role: message.role, content: text, ...(message.name ? { name: message.name } : {}) });
        }
        const passthrough = {
          tools: body.tools,
          tool_choice: body.tool_choice,
          parallel_tool_calls: body.parallel_tool_calls,
          response_format: body.response_format,
          stop: body.stop,
          seed: body.seed,
          top_p: body.top_p,
          frequency_penalty: body.frequency_penalty,
          presence_penalty: body.presence_penalty,
        };
        const lastContent = toolContinuation ? '' : (last.content ?? '');
        const imageUrls = typeof lastContent === 'string' ? [] : lastContent.flatMap((part) => (part.type === 'image_url' ? [part.image_url.url] : []));
        const signal = clientSignal(reply);
        const heard = await hearVoiceMessage(voice, { user, message: inputAudioOf(lastContent), field: 'messages', requestId: request.id, signal, assertCharacter: () => characters.get(slug, viewer) });
        const turn = await chat.prepare({
          character: slug,
          viewer,
          user,
          guildId,
          channelId,
          text: withTranscript(textOf(withoutAudio(lastContent)), heard),
          messageMetadata: heard?.metadata,
          imageUrls,
          contentField: 'messages',
          imageField: 'messages',
          clientSystemMessages,
          clientHistory,
          temperature: body.temperature,
          maxTokens: body.max_completion_tokens ?? body.max_tokens,
          passthrough,
          toolContinuation,
          stream: body.stream,
          signal,
          requestId: request.id,
        });
        const created = Math.floor(Date.now() / 1000);
        // The name the client asked for (shapesinc/<slug> stays shapesinc/…).
        const model = body.model;
        const includeUsage = body.stream_options?.include_usage === true;

        if (!body.stream) {
          const outcome = turn.kind === 'model' ? await chat.run(turn) : undefined;
          const usage = usageOf(outcome);
          return {
            id: `chatcmpl-${outcome?.assistantMessageId ?? randomUUID()}`,
            object: 'chat.completion' as const,
            created,
            model,
            choices: [
              {
                index: 0,
                message: {
                  role: 'assistant' as const,
                  content: turn.kind === 'command' ? turn.reply : outcome?.toolCalls && !outcome.text ? null : (outcome?.text ?? ''),
                  ...(outcome?.toolCalls ? { tool_calls: outcome.toolCalls } : {}),
                },
                finish_reason: outcome?.status === 'blocked' ? 'content_filter' : (outcome?.finishReason ?? 'stop'),
              },
            ],
            usage: { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens },
            conversation_id: turn.conversation.id,
          };
        }

        const id = `chatcmpl-${randomUUID()}`;
        const chunk = (delta: Record<string, unknown>, finishReason: string | null) => ({
          id,
          object: 'chat.completion.chunk',
          created,
          model,
          choices: [{ index: 0, delta, finish_reason: finishReason }],
          // With include_usage every chunk carries usage: null and a last chunk carries the figures (OpenAI's shape).
          ...(includeUsage ? { usage: null } : {}),
        });
        const writer = new SseWriter(reply, keepAliveMs);
        let roleSent = false;
        const sendDelta = (text: string) => {
          writer.data(chunk(roleSent ? { content: text } : { role: 'assistant', content: text }, null));
          roleSent = true;
        };
        // Tool-call fragments go out as the vendor sent them (index, id, type, name, argument pieces).
        const sendToolCallDelta = (toolCalls: ChatToolCallDelta[]) => {
          writer.data(chunk(roleSent ? { tool_calls: toolCalls } : { role: 'assistant', content: null, tool_calls: toolCalls }, null));
          roleSent = true;
        };
        const closeStream = (finishReason: string, outcome: TurnOutcome | undefined) => {
          if (!roleSent) sendDelta('');
          writer.data(chunk({}, finishReason));
          const usage = usageOf(outcome);
          if (includeUsage) {
            writer.data({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens } });
          }
          writer.data('[DONE]');
          writer.end();
        };
        const errorEvent = (error: unknown) => {
          const normalized = normalizeError(error);
          return { error: { message: normalized.message, type: normalized.status >= 500 ? 'api_error' : 'invalid_request_error', code: normalized.code, param: null } };
        };

        if (turn.kind === 'command') {
          sendDelta(turn.reply);
          closeStream('stop', undefined);
          return reply;
        }
        writer.startKeepAlive();
        try {
          const outcome = await chat.run(turn, { onDelta: sendDelta, onToolCallDelta: sendToolCallDelta });
          if (!outcome.assistantMessageId) markIdempotencyFailed(request);
          if (outcome.error) {
            // The upstream broke after text was sent: OpenAI's clients raise on an error event.
            writer.data(errorEvent(outcome.error));
            writer.end();
          } else if (outcome.status === 'blocked') {
            sendDelta(`${roleSent ? '\n\n' : ''}${outcome.text}`);
            closeStream('content_filter', outcome);
          } else closeStream(outcome.finishReason, outcome);
        } catch (error) {
          markIdempotencyFailed(request);
          writer.stopKeepAlive();
          if (!writer.isOpen) throw error;
          request.log.warn({ err: error }, 'chat stream failed after it opened');
          writer.data(errorEvent(error));
          writer.end();
        }
        return reply;
      } finally {
        leave();
      }
    },
  );

  app.get(
    '/v1/models',
    { schema: { tags: ['openai'], summary: 'The characters you can talk to, as OpenAI model objects', response: { 200: modelListSchema, 401: openAiErrorSchema } } },
    async (request) => {
      const { actor } = await actingActor(identity, request);
      const data: Array<z.infer<typeof modelListSchema>['data'][number]> = [];
      let cursor: string | undefined;
      // Every visible character, page by page (bounded: a model list is not a data export).
      for (let page = 0; page < 50; page += 1) {
        const list = await characters.list({ viewer: actor, limit: 200, cursor });
        for (const character of list.data) {
          data.push({ id: `character/${character.slug}`, object: 'model', created: Math.floor(Date.parse(character.createdAt) / 1000), owned_by: character.ownerUserId ?? 'anima' });
        }
        if (!list.nextCursor) break;
        cursor = list.nextCursor;
      }
      return { object: 'list' as const, data };
    },
  );

  /** The end user for conversation routes; admins without X-User-Id see everyone's. */
  const conversationViewer = async (request: FastifyRequest): Promise<UserRow | undefined> => {
    const principal = requirePrincipal(request);
    const user = await optionalActingUser(identity, request);
    if (!user && principal.role !== 'admin') throw new ValidationError('X-User-Id', 'This endpoint acts for an end user: send X-User-Id.');
    return user;
  };

  app.get(
    '/v1/conversations',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Your conversations (direct and the channels you spoke in), most recent first',
        querystring: pageQuery,
        response: { 200: z.object({ data: z.array(conversationSchema), next_cursor: z.string().nullable() }), ...problemResponses },
      },
    },
    async (request) => {
      const user = await conversationViewer(request);
      const page = await chat.listConversations(user, { limit: request.query.limit, cursor: request.query.cursor });
      return { data: page.data.map(presentConversation), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/conversations/:id/messages',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Messages of a conversation, newest first (also those before a context reset)',
        params: conversationParams,
        querystring: pageQuery,
        response: { 200: messageListSchemaFor, ...problemResponses },
      },
    },
    async (request) => {
      const user = await conversationViewer(request);
      const conversation = await chat.conversationFor(request.params.id, user);
      const page = await chat.listMessages(conversation, { limit: request.query.limit, cursor: request.query.cursor, viewerUserId: user?.id });
      return { data: page.data.map(presentMessage), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/v1/conversations/:id/reset',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Clear the short-term context (like !wack); the messages stay for export',
        params: conversationParams,
        response: { 200: conversationSchema, ...problemResponses },
      },
    },
    async (request) => {
      const user = await conversationViewer(request);
      const conversation = await chat.conversationFor(request.params.id, user);
      return presentConversation(await chat.resetConversation(conversation));
    },
  );

  app.delete(
    '/v1/conversations/:id',
    { schema: { tags: ['conversations'], summary: 'Delete a conversation and its messages', params: conversationParams, response: { 204: z.null(), ...problemResponses } } },
    async (request, reply) => {
      const user = await conversationViewer(request);
      const conversation = await chat.conversationFor(request.params.id, user);
      await chat.deleteConversation(conversation);
      return reply.status(204).send(null);
    },
  );
}
