/**
 * Google Gemini (Generative Language API, v1beta) fake: generateContent, SSE
 * streamGenerateContent, embedContent, batchEmbedContents and the model list. Accepts camelCase
 * and snake_case request bodies, answers camelCase, and takes the key from `x-goog-api-key` or
 * `?key=`. Its root stands for `https://generativelanguage.googleapis.com`.
 */
import { randomUUID } from 'node:crypto';
import { estimateTokens, headerValue, plainObject, splitIntoDeltas, startFakeServer, type FakeContext, type FakeServer } from './fake-server.js';
import { embedText } from './vectors.js';

export interface GeminiImagePart {
  mimeType: string;
  /** Decoded byte length of the inline data. */
  bytes: number;
}

/** What the fake understood of a generateContent request; also stored in `request.meta`. */
export interface GeminiRequestInfo {
  model: string;
  /** Text of the last `user` turn. */
  userText: string;
  /** Text of the system instruction, if any. */
  systemText: string | undefined;
  images: GeminiImagePart[];
  /** Whether an image part (inlineData / inline_data) arrived, and the first one's type. */
  hasImage: boolean;
  imageMimeType: string | undefined;
  /** Whether the body used snake_case keys (inline_data, system_instruction, generation_config). */
  snakeCase: boolean;
  stream: boolean;
}

export interface GeminiSettings {
  validKeys: string[];
  /** Fixed reply or a function of the raw body and what the fake parsed from it. */
  reply: string | ((body: unknown, info: GeminiRequestInfo) => string);
  chunkDelayMs: number;
  /** Prompts containing one of these words get no candidates and `promptFeedback.blockReason`. */
  blockedWords: string[];
  /** Models listed by `GET /v1beta/models`; names starting with gemini/text-embedding are also accepted. */
  models: string[];
}

export interface GeminiFake extends FakeServer {
  settings: GeminiSettings;
  errorBody(status: number): unknown;
}

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

const BAD_KEY_MESSAGE = 'API key not valid. Please pass a valid API key.';

export function geminiErrorBody(status: number, message?: string, details?: unknown[]): unknown {
  const defaults: Record<number, string> = {
    400: 'Request contains an invalid argument.',
    403: 'The caller does not have permission',
    404: 'Requested entity was not found.',
    429: 'You exceeded your current quota, please check your plan and billing details.',
    500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
    503: 'The model is overloaded. Please try again later.',
  };
  const error: Record<string, unknown> = {
    code: status,
    message: message ?? defaults[status] ?? `Error ${status}`,
    status: STATUS_NAMES[status] ?? 'UNKNOWN',
  };
  if (details !== undefined) error.details = details;
  else if (status === 429) {
    error.details = [
      {
        '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
        violations: [{ quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests', quotaId: 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier' }],
      },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '34.4s' },
    ];
  }
  return { error };
}

const badKeyBody = (): unknown =>
  geminiErrorBody(400, BAD_KEY_MESSAGE, [
    {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'API_KEY_INVALID',
      domain: 'googleapis.com',
      metadata: { service: 'generativelanguage.googleapis.com' },
    },
    { '@type': 'type.googleapis.com/google.rpc.LocalizedMessage', locale: 'en-US', message: BAD_KEY_MESSAGE },
  ]);

/** Reads `camelName` or its snake_case twin, noting which one the body used. */
function pick(object: Record<string, unknown>, camelName: string, onSnake: () => void): unknown {
  if (object[camelName] !== undefined) return object[camelName];
  const snakeName = camelName.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
  if (object[snakeName] !== undefined) {
    onSnake();
    return object[snakeName];
  }
  return undefined;
}

function partsText(parts: unknown): string {
  if (!Array.isArray(parts)) return '';
  return parts
    .map((part) => plainObject(part).text)
    .filter((text): text is string => typeof text === 'string')
    .join('');
}

function defaultDimensions(model: string): number {
  return /text-embedding-004|embedding-001$/.test(model) && !model.startsWith('gemini') ? 768 : 3072;
}

export async function startGeminiFake(options: Partial<GeminiSettings> = {}): Promise<GeminiFake> {
  const settings: GeminiSettings = {
    validKeys: ['test-key'],
    reply: (_body, info) => (info.hasImage ? `I see an image (${info.imageMimeType ?? 'unknown'}). Echo: ${info.userText}` : `Echo: ${info.userText}`),
    chunkDelayMs: 0,
    blockedWords: [],
    models: ['gemini-2.5-flash', 'gemini-2.5-pro', 'gemini-2.0-flash', 'gemini-embedding-001', 'text-embedding-004'],
    ...options,
  };

  const knownModel = (model: string): boolean => settings.models.includes(model) || /^(gemini|text-embedding|embedding)/.test(model);

  const modelResource = (name: string): Record<string, unknown> => {
    const embedding = /embedding/.test(name);
    return {
      name: `models/${name}`,
      version: '001',
      displayName: name,
      description: `Fake ${name}`,
      inputTokenLimit: embedding ? 2048 : 1048576,
      outputTokenLimit: embedding ? 1 : 65536,
      supportedGenerationMethods: embedding ? ['embedContent', 'countTextTokens', 'batchEmbedContents'] : ['generateContent', 'countTokens'],
      ...(embedding ? {} : { temperature: 1, topP: 0.95, topK: 64, maxTemperature: 2 }),
    };
  };

  const generate = async (context: FakeContext, model: string, stream: boolean): Promise<void> => {
    const body = plainObject(context.request.body);
    let snakeCase = false;
    const onSnake = (): void => {
      snakeCase = true;
    };
    const contents = pick(body, 'contents', onSnake);
    if (!Array.isArray(contents) || contents.length === 0) {
      await context.json(400, geminiErrorBody(400, '* GenerateContentRequest.contents: contents is not specified\n'));
      return;
    }
    const images: GeminiImagePart[] = [];
    let promptChars = 0;
    let userText = '';
    for (const content of contents) {
      const entry = plainObject(content);
      const parts = Array.isArray(entry.parts) ? entry.parts : [];
      for (const rawPart of parts) {
        const part = plainObject(rawPart);
        if (typeof part.text === 'string') promptChars += part.text.length;
        const inline = plainObject(pick(part, 'inlineData', onSnake));
        if (typeof inline.data === 'string') {
          const mimeType = pick(inline, 'mimeType', onSnake);
          images.push({ mimeType: typeof mimeType === 'string' ? mimeType : 'application/octet-stream', bytes: Buffer.from(inline.data, 'base64').length });
        }
      }
      if ((entry.role ?? 'user') === 'user') userText = partsText(parts);
    }
    const system = plainObject(pick(body, 'systemInstruction', onSnake));
    const systemText = Array.isArray(system.parts) ? partsText(system.parts) : undefined;
    promptChars += systemText?.length ?? 0;
    const generationConfig = plainObject(pick(body, 'generationConfig', onSnake));
    const maxOutputTokens = pick(generationConfig, 'maxOutputTokens', onSnake);

    const info: GeminiRequestInfo = {
      model,
      userText,
      systemText,
      images,
      hasImage: images.length > 0,
      imageMimeType: images[0]?.mimeType,
      snakeCase,
      stream,
    };
    Object.assign(context.request.meta, info);

    // Gemini bills a flat 258 tokens per image.
    const promptTokenCount = Math.ceil(promptChars / 4) + images.length * 258;
    const responseId = randomUUID().replaceAll('-', '').slice(0, 22);
    const lowered = `${userText} ${systemText ?? ''}`.toLowerCase();
    if (settings.blockedWords.some((word) => lowered.includes(word.toLowerCase()))) {
      const blocked = {
        promptFeedback: {
          blockReason: 'SAFETY',
          safetyRatings: [{ category: 'HARM_CATEGORY_HARASSMENT', probability: 'HIGH', blocked: true }],
        },
        usageMetadata: { promptTokenCount, totalTokenCount: promptTokenCount },
        modelVersion: model,
        responseId,
      };
      if (stream && context.request.query.alt === 'sse') {
        const writer = context.sse({}, settings.chunkDelayMs);
        await writer.data(blocked);
        writer.end();
      } else {
        await context.json(200, stream ? [blocked] : blocked);
      }
      return;
    }

    let text = typeof settings.reply === 'function' ? settings.reply(body, info) : settings.reply;
    let finishReason = 'STOP';
    if (typeof maxOutputTokens === 'number' && estimateTokens(text) > maxOutputTokens) {
      text = text.slice(0, maxOutputTokens * 4);
      finishReason = 'MAX_TOKENS';
    }
    const usage = (candidatesTokenCount: number): Record<string, unknown> => ({
      promptTokenCount,
      candidatesTokenCount,
      totalTokenCount: promptTokenCount + candidatesTokenCount,
      thoughtsTokenCount: 0,
      promptTokensDetails: [
        { modality: 'TEXT', tokenCount: Math.ceil(promptChars / 4) },
        ...(images.length > 0 ? [{ modality: 'IMAGE', tokenCount: images.length * 258 }] : []),
      ],
    });
    const response = (part: string, last: boolean, candidatesTokenCount: number): Record<string, unknown> => ({
      candidates: [
        {
          content: { role: 'model', parts: [{ text: part }] },
          ...(last ? { finishReason } : {}),
          index: 0,
        },
      ],
      usageMetadata: usage(candidatesTokenCount),
      modelVersion: model,
      responseId,
    });

    if (!stream) {
      await context.json(200, response(text, true, estimateTokens(text)));
      return;
    }
    const deltas = splitIntoDeltas(text);
    let sent = '';
    const chunks = deltas.map((delta, index) => {
      sent += delta;
      return response(delta, index === deltas.length - 1, estimateTokens(sent));
    });
    // Without alt=sse the real API streams one JSON array.
    if (context.request.query.alt !== 'sse') {
      await context.json(200, chunks);
      return;
    }
    const writer = context.sse({}, settings.chunkDelayMs);
    for (const chunk of chunks) {
      if (!(await writer.data(chunk))) return;
    }
    writer.end(); // no [DONE]: the stream ends at EOF
  };

  const embedOne = (request: Record<string, unknown>, model: string): number[] | string => {
    const content = plainObject(request.content);
    if (!Array.isArray(content.parts)) return '* EmbedContentRequest.content: contents is not specified\n';
    const dimensions = pick(request, 'outputDimensionality', () => undefined) ?? defaultDimensions(model);
    if (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1) {
      return `* EmbedContentRequest.output_dimensionality: invalid value ${JSON.stringify(dimensions)}\n`;
    }
    return embedText(partsText(content.parts), dimensions);
  };

  const server = await startFakeServer(
    async (context) => {
      const { method, path, headers, query } = context.request;
      const key = headerValue(headers, 'x-goog-api-key') ?? query.key;
      context.request.meta.keySource = headerValue(headers, 'x-goog-api-key') !== undefined ? 'header' : query.key !== undefined ? 'query' : 'none';
      if (key === undefined || !settings.validKeys.includes(key)) {
        await context.json(400, badKeyBody());
        return;
      }
      const listMatch = /^\/(v1beta|v1)\/models\/?$/.exec(path);
      if (method === 'GET' && listMatch !== null) {
        const pageSize = Number(query.pageSize ?? 50) || 50;
        const offset = Number(query.pageToken ?? 0) || 0;
        const page = settings.models.slice(offset, offset + pageSize);
        const next = offset + pageSize < settings.models.length ? String(offset + pageSize) : undefined;
        await context.json(200, { models: page.map(modelResource), ...(next !== undefined ? { nextPageToken: next } : {}) });
        return;
      }
      const getMatch = /^\/(v1beta|v1)\/models\/([^/:]+)$/.exec(path);
      if (method === 'GET' && getMatch !== null) {
        const model = getMatch[2] ?? '';
        if (!knownModel(model)) await context.json(404, geminiErrorBody(404, `models/${model} is not found for API version ${getMatch[1]}`));
        else await context.json(200, modelResource(model));
        return;
      }
      const actionMatch = /^\/(v1beta|v1)\/models\/([^/:]+):([A-Za-z]+)$/.exec(path);
      if (method === 'POST' && actionMatch !== null) {
        const version = actionMatch[1] ?? 'v1beta';
        const model = actionMatch[2] ?? '';
        const action = actionMatch[3] ?? '';
        context.request.meta.model = model;
        if (!knownModel(model)) {
          await context.json(404, geminiErrorBody(404, `models/${model} is not found for API version ${version}, or is not supported for ${action}. Call ListModels to see the list of available models and their supported methods.`));
          return;
        }
        switch (action) {
          case 'generateContent':
            await generate(context, model, false);
            return;
          case 'streamGenerateContent':
            await generate(context, model, true);
            return;
          case 'embedContent': {
            const result = embedOne(plainObject(context.request.body), model);
            if (typeof result === 'string') await context.json(400, geminiErrorBody(400, result));
            else await context.json(200, { embedding: { values: result } });
            return;
          }
          case 'batchEmbedContents': {
            const requests = plainObject(context.request.body).requests;
            if (!Array.isArray(requests) || requests.length === 0) {
              await context.json(400, geminiErrorBody(400, '* BatchEmbedContentsRequest.requests: requests is not specified\n'));
              return;
            }
            const embeddings: Array<{ values: number[] }> = [];
            for (const request of requests) {
              const result = embedOne(plainObject(request), model);
              if (typeof result === 'string') {
                await context.json(400, geminiErrorBody(400, result));
                return;
              }
              embeddings.push({ values: result });
            }
            await context.json(200, { embeddings });
            return;
          }
          default:
            break;
        }
      }
      await context.json(404, geminiErrorBody(404, `Method not found: ${method} ${path}`));
    },
    { errorBody: (status) => geminiErrorBody(status) },
  );
  return { ...server, settings, errorBody: (status) => geminiErrorBody(status) };
}
