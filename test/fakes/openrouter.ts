/**
 * OpenAI-shaped chat fake in three flavours: OpenRouter (the default), OpenAI and xAI. They
 * share `/chat/completions`, `/embeddings` and `/models`, and differ where the vendors differ:
 * error envelopes, usage in streams, keep-alive comments, cost, and the key-check endpoint.
 *
 * The fake's root stands for the vendor's base URL including its version prefix, so
 * `OPENROUTER_BASE_URL=<fake.url>` plays `https://openrouter.ai/api/v1`.
 */
import { randomUUID } from 'node:crypto';
import {
  bearerToken,
  estimateTokens,
  plainObject,
  splitIntoDeltas,
  startFakeServer,
  type FakeContext,
  type FakeServer,
} from './fake-server.js';
import { handleOpenAiImages, openAiErrorBody, type OpenAiImageSettings } from './openai-images.js';
import { DEFAULT_TRANSCRIPT, handleOpenAiTranscription, type TranscriptionSettings } from './transcription.js';
import { embedText, embeddingToBase64 } from './vectors.js';

export type ChatFlavor = 'openrouter' | 'openai' | 'xai';

export interface ChatMessage {
  role: string;
  content?: string | Array<{ type: string; text?: string; image_url?: { url: string; detail?: string } }> | null;
  [key: string]: unknown;
}

export interface ChatRequestBody {
  model?: string;
  messages?: ChatMessage[];
  stream?: boolean;
  max_tokens?: number;
  [key: string]: unknown;
}

export type ReplySource = string | ((body: ChatRequestBody) => string);

export interface StreamErrorSettings {
  /** Content deltas sent before the error event. */
  afterDeltas?: number;
  code?: string | number;
  message?: string;
}

export interface OpenAiCompatibleSettings extends OpenAiImageSettings, TranscriptionSettings {
  validKeys: string[];
  /** A fixed reply or one computed from the request. Default: `Echo: <last user text>`. */
  reply: ReplySource;
  /** Delay between streamed chunks. */
  chunkDelayMs: number;
  /** USD per prompt / completion token, used for `usage.cost` and the `/models` pricing. */
  promptPrice: number;
  completionPrice: number;
  /** Model ids listed by `GET /models`. */
  models: string[];
  /** Embedding size when the request has no `dimensions`. */
  embeddingDimensions: number;
  /** When set, streams end with a mid-stream error event instead of finishing. */
  streamError: StreamErrorSettings | null;
  /** OpenRouter only: non-stream completions answer 200 with this error body and no choices. */
  errorWith200: { code: number; message: string } | null;
  /** Overrides merged into the `GET /key` answer (OpenRouter). */
  keyInfo: Record<string, unknown>;
  /**
   * The tool calls to answer with, or none. Default: when the request offers `tools` (and
   * `tool_choice` is not "none") and the last message is the user's, call the first tool (or the one
   * `tool_choice` names) with `{"query": <last user text>}`; after tool results, answer in text.
   */
  toolCalls: (body: ChatRequestBody) => Array<{ name: string; arguments: string }> | undefined;
}

const defaultToolCalls = (body: ChatRequestBody): Array<{ name: string; arguments: string }> | undefined => {
  const tools = Array.isArray(body.tools) ? (body.tools as Array<{ function?: { name?: string } }>) : [];
  if (tools.length === 0 || body.tool_choice === 'none' || body.messages?.at(-1)?.role !== 'user') return undefined;
  const chosen = plainObject(plainObject(body.tool_choice).function).name;
  const name = typeof chosen === 'string' ? chosen : tools[0]?.function?.name;
  return name ? [{ name, arguments: JSON.stringify({ query: lastUserText(body) }) }] : undefined;
};

export interface OpenAiCompatibleFakeOptions extends Partial<OpenAiCompatibleSettings> {
  flavor?: ChatFlavor;
  /** See FakeServerOptions.keepAliveMs. */
  keepAliveMs?: number;
}

export interface OpenAiCompatibleFake extends FakeServer {
  flavor: ChatFlavor;
  /** Live settings: change them between requests (e.g. `fake.settings.reply = 'Hi'`). */
  settings: OpenAiCompatibleSettings;
  /** The vendor's error body for an HTTP status. */
  errorBody(status: number): unknown;
}

const DEFAULT_MODELS: Record<ChatFlavor, string[]> = {
  openrouter: ['openai/gpt-4o-mini', 'anthropic/claude-3.5-sonnet', 'meta-llama/llama-3.1-8b-instruct', 'openai/text-embedding-3-small'],
  openai: ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'dall-e-3', 'gpt-image-1'],
  xai: ['grok-4', 'grok-3-mini', 'grok-2-image-1212'],
};

const OPENROUTER_MESSAGES: Record<number, string> = {
  400: 'Invalid request',
  401: 'User not found.',
  402: 'Insufficient credits. Add more using https://openrouter.ai/credits',
  403: 'Input was flagged by moderation',
  404: 'Not found',
  408: 'Request timed out',
  429: 'Rate limit exceeded',
  500: 'Internal Server Error',
  502: 'Provider returned error',
  503: 'No available model provider that meets your routing requirements',
};

function openRouterErrorBody(status: number, message?: string): unknown {
  const error: Record<string, unknown> = { code: status, message: message ?? OPENROUTER_MESSAGES[status] ?? `Error ${status}` };
  if (status === 403) {
    error.metadata = { reasons: ['violence'], flagged_input: '…', provider_name: 'OpenAI', model_slug: 'openai/gpt-4o-mini' };
  } else if (status === 502) {
    error.metadata = { provider_name: 'OpenAI', raw: { error: { message: 'upstream failure' } } };
  }
  return { error };
}

function openAiStyleErrorBody(status: number): unknown {
  switch (status) {
    case 400:
      return openAiErrorBody('Invalid request.', 'invalid_request_error');
    case 401:
      return openAiErrorBody('Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.', 'invalid_request_error', null, 'invalid_api_key');
    case 403:
      return openAiErrorBody('Country, region, or territory not supported', 'request_forbidden', null, 'unsupported_country_region_territory');
    case 404:
      return openAiErrorBody('The model does not exist or you do not have access to it.', 'invalid_request_error', null, 'model_not_found');
    case 429:
      return openAiErrorBody('Rate limit reached for requests. Please try again in 1s.', 'requests', null, 'rate_limit_exceeded');
    default:
      return openAiErrorBody(status >= 500 ? 'The server had an error while processing your request. Sorry about that!' : `Error ${status}`, status >= 500 ? 'server_error' : 'invalid_request_error');
  }
}

/** The text parts of a message's content joined, ignoring images. */
export function messageText(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((part) => part.type === 'text' && typeof part.text === 'string')
    .map((part) => part.text)
    .join('\n');
}

export function lastUserText(body: ChatRequestBody): string {
  const users = (body.messages ?? []).filter((message) => message.role === 'user');
  return messageText(users.at(-1)?.content);
}

const defaultReply = (body: ChatRequestBody): string => {
  const last = body.messages?.at(-1);
  // After the client ran a tool, the model answers from its result.
  if (last?.role === 'tool') return `Tool said: ${messageText(last.content)}`;
  return `Echo: ${lastUserText(body)}`;
};

function maskKey(key: string): string {
  return key.length <= 14 ? `${key.slice(0, 3)}...` : `${key.slice(0, 11)}...${key.slice(-3)}`;
}

export async function startOpenRouterFake(options: OpenAiCompatibleFakeOptions = {}): Promise<OpenAiCompatibleFake> {
  const { flavor = 'openrouter', keepAliveMs, ...overrides } = options;
  const settings: OpenAiCompatibleSettings = {
    validKeys: ['test-key'],
    reply: defaultReply,
    chunkDelayMs: 0,
    promptPrice: 0.000001,
    completionPrice: 0.000002,
    models: DEFAULT_MODELS[flavor],
    embeddingDimensions: 1536,
    streamError: null,
    errorWith200: null,
    keyInfo: {},
    toolCalls: defaultToolCalls,
    blockedWords: [],
    servedImageMaxSide: 64,
    transcript: DEFAULT_TRANSCRIPT,
    ...overrides,
  };
  const errorBody = (status: number): unknown => (flavor === 'openrouter' ? openRouterErrorBody(status) : openAiStyleErrorBody(status));
  let generation = 0;

  const badRequest = (message: string, param: string | null = null): unknown =>
    flavor === 'openrouter' ? openRouterErrorBody(400, message) : openAiErrorBody(message, 'invalid_request_error', param);

  const checkKey = async (context: FakeContext): Promise<string | undefined> => {
    const key = bearerToken(context.request.headers);
    if (key !== undefined && settings.validKeys.includes(key)) return key;
    if (flavor === 'openrouter') {
      await context.json(401, openRouterErrorBody(401, key === undefined ? 'Missing Authentication header' : 'User not found.'));
    } else {
      const where = flavor === 'xai' ? 'https://console.x.ai' : 'https://platform.openai.com/account/api-keys';
      const message =
        key === undefined
          ? `You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from ${where}.`
          : `Incorrect API key provided: ${maskKey(key)}. You can find your API key at ${where}.`;
      await context.json(401, openAiErrorBody(message, 'invalid_request_error', null, 'invalid_api_key'));
    }
    return undefined;
  };

  const chatCompletion = async (context: FakeContext): Promise<void> => {
    const body = plainObject(context.request.body) as ChatRequestBody;
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      await context.json(400, badRequest("Missing required parameter: 'messages'.", 'messages'));
      return;
    }
    if (flavor !== 'openrouter' && typeof body.model !== 'string') {
      await context.json(400, badRequest('you must provide a model parameter', 'model'));
      return;
    }
    const model = typeof body.model === 'string' ? body.model : (settings.models[0] ?? 'openai/gpt-4o-mini');
    const imageUrls = body.messages.flatMap((message) =>
      Array.isArray(message.content) ? message.content.flatMap((part) => (part.type === 'image_url' && part.image_url ? [part.image_url.url] : [])) : [],
    );
    context.request.meta.lastUserText = lastUserText(body);
    context.request.meta.imageUrls = imageUrls;

    let text = typeof settings.reply === 'function' ? settings.reply(body) : settings.reply;
    let finishReason = 'stop';
    const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : typeof body.max_completion_tokens === 'number' ? body.max_completion_tokens : undefined;
    if (maxTokens !== undefined && estimateTokens(text) > maxTokens) {
      text = text.slice(0, maxTokens * 4);
      finishReason = 'length';
    }
    const promptChars = body.messages.reduce((sum, message) => sum + messageText(message.content).length, 0);
    const promptTokens = Math.ceil(promptChars / 4);
    const completionTokens = estimateTokens(text);
    const usage: Record<string, unknown> = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    };
    if (flavor === 'openrouter') {
      usage.cost = Number((promptTokens * settings.promptPrice + completionTokens * settings.completionPrice).toPrecision(12));
    }
    generation += 1;
    const id = flavor === 'openrouter' ? `gen-${Date.now()}-${generation}` : `chatcmpl-${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    const created = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = flavor === 'openrouter' ? { 'x-generation-id': id } : { 'x-request-id': `req_${generation}` };
    const extra: Record<string, unknown> = flavor === 'openrouter' ? { provider: 'OpenAI' } : flavor === 'openai' ? { system_fingerprint: 'fp_fake' } : {};

    const calls = settings.toolCalls(body)?.map((call, index) => ({ id: `call_${generation}_${index}`, type: 'function' as const, function: call }));
    if (calls) {
      text = '';
      finishReason = 'tool_calls';
    }

    if (body.stream !== true) {
      if (flavor === 'openrouter' && settings.errorWith200 !== null) {
        await context.json(200, { error: settings.errorWith200 }, headers);
        return;
      }
      await context.json(
        200,
        {
          id,
          object: 'chat.completion',
          created,
          model,
          ...extra,
          choices: [
            {
              index: 0,
              finish_reason: finishReason,
              logprobs: null,
              message: calls ? { role: 'assistant', content: null, refusal: null, tool_calls: calls } : { role: 'assistant', content: text, refusal: null },
            },
          ],
          usage,
        },
        headers,
      );
      return;
    }

    // OpenAI only streams usage when asked; OpenRouter always does (the option is a no-op there).
    const streamOptions = plainObject(body.stream_options);
    const sendUsage = flavor === 'openrouter' || streamOptions.include_usage === true;
    const usageField = flavor !== 'openrouter' && sendUsage ? { usage: null } : {};
    const chunk = (choices: unknown[], more: Record<string, unknown> = {}): Record<string, unknown> => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      ...extra,
      choices,
      ...usageField,
      ...more,
    });
    const stream = context.sse(headers, settings.chunkDelayMs);
    if (flavor === 'openrouter' && !(await stream.comment('OPENROUTER PROCESSING'))) return;
    if (calls) {
      // provider-apis.md §13: id, type and name in the first fragment of each call, then argument pieces.
      for (const [index, call] of calls.entries()) {
        const first = { index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } };
        const head = index === 0 ? { role: 'assistant', content: null, tool_calls: [first] } : { tool_calls: [first] };
        if (!(await stream.data(chunk([{ index: 0, delta: head, finish_reason: null, logprobs: null }])))) return;
        const middle = Math.ceil(call.function.arguments.length / 2);
        for (const piece of [call.function.arguments.slice(0, middle), call.function.arguments.slice(middle)]) {
          if (!(await stream.data(chunk([{ index: 0, delta: { tool_calls: [{ index, function: { arguments: piece } }] }, finish_reason: null, logprobs: null }])))) return;
        }
      }
    }
    const deltas = calls ? [] : splitIntoDeltas(text);
    const errorAfter = settings.streamError === null ? undefined : (settings.streamError.afterDeltas ?? 1);
    for (const [index, delta] of deltas.entries()) {
      if (errorAfter !== undefined && index >= errorAfter) break;
      const content = index === 0 ? { role: 'assistant', content: delta } : { content: delta };
      if (!(await stream.data(chunk([{ index: 0, delta: content, finish_reason: null, logprobs: null }])))) return;
    }
    if (settings.streamError !== null) {
      const { code = 'server_error', message = 'Provider disconnected unexpectedly' } = settings.streamError;
      await stream.data({
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        error: { code, message },
        choices: [{ index: 0, delta: { content: '' }, finish_reason: 'error' }],
      });
      stream.end();
      return;
    }
    if (!(await stream.data(chunk([{ index: 0, delta: {}, finish_reason: finishReason, logprobs: null }])))) return;
    if (sendUsage && !(await stream.data(chunk([], { usage })))) return;
    if (!(await stream.data('[DONE]'))) return;
    stream.end();
  };

  const embeddings = async (context: FakeContext): Promise<void> => {
    const body = plainObject(context.request.body);
    const input = body.input;
    const texts: string[] | undefined =
      typeof input === 'string'
        ? [input]
        : Array.isArray(input) && input.every((item) => typeof item === 'string')
          ? input
          : Array.isArray(input) && input.every((item) => typeof item === 'number')
            ? [input.join(' ')] // a single token array
            : Array.isArray(input) && input.every((item) => Array.isArray(item))
              ? input.map((item) => (item as unknown[]).join(' '))
              : undefined;
    if (texts === undefined || texts.length === 0) {
      await context.json(400, badRequest("'input' is a required property", 'input'));
      return;
    }
    if (typeof body.model !== 'string') {
      await context.json(400, badRequest('you must provide a model parameter', 'model'));
      return;
    }
    const dimensions = body.dimensions ?? settings.embeddingDimensions;
    if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1) {
      await context.json(400, badRequest(`Invalid 'dimensions': ${JSON.stringify(dimensions)}.`, 'dimensions'));
      return;
    }
    const base64 = body.encoding_format === 'base64';
    const tokens = texts.reduce((sum, text) => sum + estimateTokens(text), 0);
    const usage: Record<string, unknown> = { prompt_tokens: tokens, total_tokens: tokens };
    if (flavor === 'openrouter') usage.cost = Number((tokens * settings.promptPrice).toPrecision(12));
    await context.json(200, {
      object: 'list',
      data: texts.map((text, index) => {
        const vector = embedText(text, dimensions);
        return { object: 'embedding', index, embedding: base64 ? embeddingToBase64(vector) : vector };
      }),
      model: body.model,
      usage,
    });
  };

  const modelList = (): unknown => {
    const created = 1_700_000_000;
    if (flavor !== 'openrouter') {
      return { object: 'list', data: settings.models.map((id) => ({ id, object: 'model', created, owned_by: flavor === 'xai' ? 'xai' : 'system' })) };
    }
    return {
      data: settings.models.map((id) => ({
        id,
        canonical_slug: id,
        name: id.split('/').at(-1) ?? id,
        created,
        description: `Fake model ${id}`,
        context_length: 128000,
        architecture: { modality: 'text->text', input_modalities: ['text'], output_modalities: ['text'], tokenizer: 'GPT' },
        pricing: { prompt: String(settings.promptPrice), completion: String(settings.completionPrice) },
        top_provider: { context_length: 128000, max_completion_tokens: 16384, is_moderated: false },
        per_request_limits: null,
        supported_parameters: ['max_tokens', 'temperature', 'top_p', 'stop', 'seed', 'tools', 'response_format'],
      })),
    };
  };

  const server = await startFakeServer(
    async (context) => {
      const { method, path } = context.request;
      const route = `${method} ${path.replace(/\/+$/, '')}`;
      // OpenRouter documents /models as public; everything else needs a key.
      if (route === 'GET /models' && flavor === 'openrouter') {
        await context.json(200, modelList());
        return;
      }
      if (route === 'GET /api-key' && flavor === 'xai') {
        const key = bearerToken(context.request.headers);
        if (key === undefined || !settings.validKeys.includes(key)) {
          await context.json(400, { code: 'Client specified an invalid argument', error: 'Incorrect API key provided: ***. You can obtain an API key from https://console.x.ai.' });
          return;
        }
        await context.json(200, {
          redacted_api_key: maskKey(key),
          user_id: 'user-fake',
          name: 'test key',
          create_time: '2025-01-01T00:00:00Z',
          modify_time: '2025-01-01T00:00:00Z',
          modified_by: 'user-fake',
          team_id: 'team-fake',
          acls: ['api-key:model:*', 'api-key:endpoint:*'],
          api_key_id: 'key-fake',
          team_blocked: false,
          api_key_blocked: false,
          api_key_disabled: false,
        });
        return;
      }
      const key = await checkKey(context);
      if (key === undefined) return;
      switch (route) {
        case 'POST /chat/completions':
          await chatCompletion(context);
          return;
        case 'POST /embeddings':
          await embeddings(context);
          return;
        case 'GET /models':
          await context.json(200, modelList());
          return;
        case 'GET /key':
          if (flavor === 'openrouter') {
            await context.json(200, {
              data: {
                label: maskKey(key),
                limit: null,
                limit_reset: null,
                limit_remaining: null,
                include_byok_in_limit: false,
                usage: 0,
                usage_daily: 0,
                usage_weekly: 0,
                usage_monthly: 0,
                byok_usage: 0,
                byok_usage_daily: 0,
                byok_usage_weekly: 0,
                byok_usage_monthly: 0,
                is_free_tier: false,
                is_management_key: false,
                is_provisioning_key: false,
                creator_user_id: 'user_fake',
                expires_at: null,
                rate_limit: { requests: 1000, interval: '1h' },
                ...settings.keyInfo,
              },
            });
            return;
          }
          break;
        case 'POST /audio/transcriptions':
          if (flavor === 'openai') {
            await handleOpenAiTranscription(context, settings);
            return;
          }
          break;
        case 'POST /images/generations':
          if (flavor === 'openai') {
            await handleOpenAiImages(context, settings);
            return;
          }
          break;
        default:
          break;
      }
      await context.json(404, flavor === 'openrouter' ? openRouterErrorBody(404) : openAiErrorBody(`Invalid URL (${method} ${path})`, 'invalid_request_error'));
    },
    { errorBody, ...(keepAliveMs === undefined ? {} : { keepAliveMs }) },
  );
  return { ...server, flavor, settings, errorBody };
}

/** The OpenAI flavour: OpenAI errors, usage only with `stream_options.include_usage`, images. */
export function startOpenAiFake(options: Omit<OpenAiCompatibleFakeOptions, 'flavor'> = {}): Promise<OpenAiCompatibleFake> {
  return startOpenRouterFake({ ...options, flavor: 'openai' });
}

/** The xAI flavour: OpenAI-shaped chat plus `GET /api-key`. */
export function startXaiFake(options: Omit<OpenAiCompatibleFakeOptions, 'flavor'> = {}): Promise<OpenAiCompatibleFake> {
  return startOpenRouterFake({ ...options, flavor: 'xai' });
}
