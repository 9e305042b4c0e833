import { Readable } from 'node:stream';
import fastifyMultipart from '@fastify/multipart';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import type { Config } from '../../config.js';
import { PayloadTooLargeError, ValidationError } from '../../infra/http/errors.js';
import { problemResponses, problemSchema } from '../../infra/http/schemas.js';
import type { CharactersService } from '../characters/service.js';
import { optionalActingUser, requireActingUser, requirePrincipal } from '../identity/auth.js';
import type { IdentityService } from '../identity/service.js';
import type { MediaService } from '../media/index.js';
import {
  characterVoiceBodySchema,
  presentVoice,
  presentVoiceRequest,
  speechJsonSchema,
  ttsBodySchema,
  voiceCreateSchema,
  voicePatchSchema,
  voiceQuerySchema,
  voiceRequestSchema,
  voiceSchema,
} from './schemas.js';
import type { SpeakInput, VoiceService } from './service.js';

export interface VoiceRoutesDependencies {
  voice: VoiceService;
  identity: IdentityService;
  characters: CharactersService;
  media: MediaService;
  config: Readonly<Config>;
}

const audioResponses = {
  200: z.any().describe('audio bytes (audio/mpeg, audio/wav or audio/pcm), chunked when stream is true; JSON with audio_base64 when Accept: application/json'),
  ...problemResponses,
  402: problemSchema,
  413: problemSchema,
  502: problemSchema,
  504: problemSchema,
};

/** Aborted when the client goes away before the answer was sent, so the vendor call is cancelled too. */
function clientSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client closed the request'));
  });
  return controller.signal;
}

function idempotencyKey(request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key'];
  return typeof value === 'string' && value.trim() ? value.trim().slice(0, 200) : undefined;
}

function wantsJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return /application\/json/i.test(accept) && !/audio\//i.test(accept);
}

async function answerSpeech(voice: VoiceService, input: SpeakInput, stream: boolean, request: FastifyRequest, reply: FastifyReply) {
  if (stream && !wantsJson(request)) {
    const answer = await voice.speakStream(input);
    return reply
      .type(answer.contentType)
      .header('x-voice', answer.voice)
      .header('x-voice-provider', answer.provider)
      .header('x-voice-model', answer.model)
      .header('cache-control', 'no-store')
      .send(Readable.from(answer.chunks, { objectMode: false }));
  }
  const spoken = await voice.speak(input);
  if (wantsJson(request)) {
    return reply.type('application/json').send({
      audio_base64: spoken.audio.toString('base64'),
      content_type: spoken.contentType,
      format: spoken.format,
      provider: spoken.provider,
      model: spoken.model,
      voice: spoken.voice,
      characters: spoken.characters,
      seconds: Math.round(spoken.seconds * 1000) / 1000,
      credits_charged: spoken.creditsMicro / 1_000_000,
    });
  }
  return reply
    .type(spoken.contentType)
    .header('x-voice', spoken.voice)
    .header('x-voice-provider', spoken.provider)
    .header('x-voice-model', spoken.model)
    .header('x-audio-seconds', String(Math.round(spoken.seconds * 1000) / 1000))
    .header('x-characters', String(spoken.characters))
    .header('cache-control', 'no-store')
    .send(spoken.audio);
}

export function registerVoiceRoutes(app: AppInstance, dependencies: VoiceRoutesDependencies): void {
  const { voice, identity, characters, config } = dependencies;

  app.get(
    '/v1/voices',
    {
      schema: {
        tags: ['voice'],
        summary: 'The voice registry: friendly names over vendor voices (filter by language, gender, provider)',
        querystring: voiceQuerySchema,
        response: { 200: z.object({ data: z.array(voiceSchema) }), ...problemResponses },
      },
    },
    async (request) => ({ data: (await voice.listVoices(request.query)).map(presentVoice) }),
  );

  app.get(
    '/v1/admin/voices',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['voice'],
        summary: 'The whole voice registry, deactivated voices included (for the admin to turn them back on)',
        querystring: voiceQuerySchema,
        response: { 200: z.object({ data: z.array(voiceSchema) }), ...problemResponses },
      },
    },
    async (request) => ({ data: (await voice.listVoices({ ...request.query, includeInactive: true })).map(presentVoice) }),
  );

  app.post(
    '/v1/admin/voices',
    {
      config: { auth: 'admin' },
      schema: { tags: ['voice'], summary: 'Add a voice to the registry', body: voiceCreateSchema, response: { 201: voiceSchema, ...problemResponses, 409: problemSchema } },
    },
    async (request, reply) => {
      const body = request.body;
      const row = await voice.addVoice({
        name: body.name,
        provider: body.provider,
        providerVoiceId: body.provider_voice_id,
        language: body.language ?? null,
        gender: body.gender ?? null,
        description: body.description ?? '',
        cloned: body.cloned ?? false,
        active: body.active ?? true,
      });
      return reply.status(201).send(presentVoice(row));
    },
  );

  app.patch(
    '/v1/admin/voices/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['voice'],
        summary: 'Change a voice (deactivate with active: false)',
        params: z.object({ id: z.string().max(64) }),
        body: voicePatchSchema,
        response: { 200: voiceSchema, ...problemResponses, 409: problemSchema },
      },
    },
    async (request) => {
      const body = request.body;
      const row = await voice.changeVoice(request.params.id, {
        ...(body.name !== undefined && { name: body.name }),
        ...(body.provider !== undefined && { provider: body.provider }),
        ...(body.provider_voice_id !== undefined && { providerVoiceId: body.provider_voice_id }),
        ...(body.language !== undefined && { language: body.language }),
        ...(body.gender !== undefined && { gender: body.gender }),
        ...(body.description !== undefined && { description: body.description }),
        ...(body.cloned !== undefined && { cloned: body.cloned }),
        ...(body.active !== undefined && { active: body.active }),
      });
      return presentVoice(row);
    },
  );

  app.post(
    '/v1/tts',
    {
      config: { rateLimit: true, idempotency: true },
      schema: {
        tags: ['voice'],
        summary: 'Speak a text: audio bytes, chunked as produced with stream: true, or JSON with base64 (Accept: application/json)',
        body: ttsBodySchema,
        response: { ...audioResponses, 200: z.union([speechJsonSchema, z.any()]) },
      },
    },
    async (request, reply) => {
      const user = await optionalActingUser(identity, request);
      const body = request.body;
      const input: SpeakInput = {
        user,
        text: body.text,
        voice: body.voice,
        provider: body.provider,
        model: body.model,
        format: body.format,
        speed: body.speed,
        requestId: request.id,
        idempotencyKey: idempotencyKey(request),
        source: 'tts',
        signal: clientSignal(reply),
      };
      return answerSpeech(voice, input, body.stream, request, reply);
    },
  );

  app.post(
    '/v1/characters/:id/voice',
    {
      config: { rateLimit: true, idempotency: true },
      schema: {
        tags: ['voice'],
        summary: "Speak a text in the character's voice (its voice_id and voice_settings)",
        params: z.object({ id: z.string().max(200) }),
        body: characterVoiceBodySchema,
        response: { ...audioResponses, 200: z.union([speechJsonSchema, z.any()]) },
      },
    },
    async (request, reply) => {
      const user = await optionalActingUser(identity, request);
      const character = await characters.get(request.params.id, { role: requirePrincipal(request).role, userId: user?.id });
      if (!character.voiceId) throw new ValidationError('voice_id', `${character.name} has no voice: set voice_id (a name from GET /v1/voices) on the character.`);
      const settings = character.voiceSettings ?? {};
      const input: SpeakInput = {
        user,
        text: request.body.text,
        voice: character.voiceId,
        provider: settings.provider,
        model: settings.model,
        format: request.body.format,
        speed: settings.speed,
        settings: { stability: settings.stability, similarityBoost: settings.similarityBoost, style: settings.style, emotion: settings.emotion },
        characterId: character.id,
        requestId: request.id,
        idempotencyKey: idempotencyKey(request),
        source: 'character',
        signal: clientSignal(reply),
      };
      return answerSpeech(voice, input, request.body.stream, request, reply);
    },
  );

  app.get(
    '/v1/me/voice-requests',
    {
      schema: {
        tags: ['voice'],
        summary: 'The acting user\'s speech and transcription requests, newest first, with their outcome',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
        response: { 200: z.object({ data: z.array(voiceRequestSchema) }), ...problemResponses },
      },
    },
    async (request) => {
      const user = await requireActingUser(identity, request);
      return { data: (await voice.voiceRequestsOf(user.id, request.query.limit)).map(presentVoiceRequest) };
    },
  );

  // OpenAI-compatible transcription: multipart, in its own scope so no other route parses multipart.
  void app.register(async (scope) => {
    await scope.register(fastifyMultipart, { limits: { fileSize: config.voice.audioInputMaxBytes, files: 1, fields: 20, fieldSize: 100_000 } });
    scope.post(
      '/v1/audio/transcriptions',
      {
        bodyLimit: config.voice.audioInputMaxBytes + 1_048_576,
        config: { rateLimit: true },
        schema: {
          tags: ['voice'],
          summary: 'Transcribe audio (OpenAI-compatible multipart: file, model, language?, prompt?, response_format?)',
          consumes: ['multipart/form-data'],
          response: { 200: z.any().describe('{text, usage} (json), the text (text), or {language, duration, text, segments} (verbose_json)') },
        },
      },
      async (request, reply) => {
        const user = await optionalActingUser(identity, request);
        if (!request.isMultipart()) throw new ValidationError('file', 'Send multipart/form-data with a file field.');
        let file: { bytes: Buffer; mimeType: string; filename: string } | undefined;
        const fields: Record<string, string> = {};
        try {
          for await (const part of request.parts()) {
            if (part.type === 'file') {
              if (part.fieldname !== 'file' || file) {
                await part.toBuffer();
                continue;
              }
              const bytes = await part.toBuffer();
              file = { bytes, mimeType: part.mimetype, filename: part.filename || 'audio' };
            } else if (typeof part.value === 'string') {
              fields[part.fieldname] = part.value;
            }
          }
        } catch (error) {
          if ((error as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw new PayloadTooLargeError(`The file is larger than ${config.voice.audioInputMaxBytes} bytes.`, { extra: { field: 'file' } });
          throw error;
        }
        if (!file || file.bytes.length === 0) throw new ValidationError('file', 'file is required: the audio to transcribe.');
        const format = fields.response_format ?? 'json';
        if (!['json', 'text', 'verbose_json'].includes(format)) throw new ValidationError('response_format', 'response_format must be json, text or verbose_json.');
        const transcript = await voice.transcribe({
          user,
          audio: file.bytes,
          mimeType: file.mimeType,
          filename: file.filename,
          model: fields.model,
          language: fields.language,
          prompt: fields.prompt,
          requestId: request.id,
          idempotencyKey: idempotencyKey(request),
          source: 'transcription',
          field: 'file',
          signal: clientSignal(reply),
        });
        const seconds = Math.round(transcript.seconds * 100) / 100;
        if (format === 'text') return reply.type('text/plain; charset=utf-8').send(transcript.text);
        if (format === 'verbose_json') {
          return reply.send({
            task: 'transcribe',
            language: transcript.language ?? null,
            duration: seconds,
            text: transcript.text,
            segments: [{ id: 0, seek: 0, start: 0, end: seconds, text: transcript.text }],
            usage: { type: 'duration', seconds: Math.ceil(transcript.seconds) },
          });
        }
        return reply.send({ text: transcript.text, usage: { type: 'duration', seconds: Math.ceil(transcript.seconds) } });
      },
    );
  });
}
