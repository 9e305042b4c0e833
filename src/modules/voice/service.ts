import type { Logger } from 'pino';
import type { Config, ProviderName } from '../../config.js';
import type { Database } from '../../infra/db/database.js';
import { AppError, ConflictError, NotFoundError, PayloadTooLargeError, ProviderKeyRequiredError, UpstreamError, ValidationError } from '../../infra/http/errors.js';
import { contractErrorForProviderFailure, isProviderFailure } from '../../infra/http/provider-failure.js';
import { ProviderCallError } from '../../providers/chat/provider-error.js';
import { CONTENT_TYPES, wavHeader, PCM_SAMPLE_RATE, type SpeechFormat, type SpeechResult, type SpeechStream, type SpeechVoiceSettings } from '../../providers/speech/index.js';
import type { TranscriptionResult } from '../../providers/transcription/index.js';
import type { ProviderGateway, Lease } from '../gateway/index.js';
import type { UserRow } from '../identity/store.js';
import { joinAudio, measureSeconds, sniffAudio, splitText } from './audio.js';
import * as store from './store.js';
import type { VoiceRequestRow, VoiceRow } from './tables.js';

export type VoiceSource = 'tts' | 'character' | 'chat' | 'transcription';

/** Where a request comes from and who pays: passed to the gateway and the request log. */
export interface VoiceCallContext {
  user: UserRow | undefined;
  characterId?: string | undefined;
  requestId?: string | undefined;
  idempotencyKey?: string | undefined;
  source: VoiceSource;
  signal?: AbortSignal | undefined;
}

export interface SpeakInput extends VoiceCallContext {
  text: string;
  /** A registry name (`british-female`) or a vendor voice id. */
  voice: string;
  provider?: ProviderName | undefined;
  model?: string | undefined;
  format: SpeechFormat;
  speed?: number | undefined;
  settings?: SpeechVoiceSettings | undefined;
}

export interface SpokenAudio {
  audio: Buffer;
  contentType: string;
  format: SpeechFormat;
  provider: ProviderName;
  model: string;
  voice: string;
  characters: number;
  seconds: number;
  creditsMicro: number;
}

export interface SpeechStreamAnswer {
  contentType: string;
  provider: ProviderName;
  model: string;
  voice: string;
  /** Audio as it is produced; usage is settled when it ends (or the client leaves). */
  chunks: AsyncGenerator<Buffer>;
}

export interface TranscribeInput extends VoiceCallContext {
  audio: Buffer;
  mimeType?: string | undefined;
  filename?: string | undefined;
  model?: string | undefined;
  provider?: ProviderName | undefined;
  language?: string | undefined;
  prompt?: string | undefined;
  /** The request field the audio came in (named in a 422 when it is not audio). */
  field: string;
}

export interface Transcript {
  text: string;
  provider: ProviderName;
  model: string;
  seconds: number;
  language: string | undefined;
  mimeType: string;
}

interface ResolvedVoice {
  provider: ProviderName;
  voiceId: string;
  /** What the request log and answers call it: the registry name, or the raw id. */
  label: string;
}

export interface VoiceServiceDependencies {
  config: Readonly<Config>;
  db: Database;
  gateway: ProviderGateway;
  logger: Logger;
}

const TRANSCRIPTION_ORDER: ProviderName[] = ['openai', 'elevenlabs', 'gemini'];
/** An ElevenLabs voice id: 20 letters and digits. */
const ELEVENLABS_VOICE_ID = /^[A-Za-z0-9]{20}$/;
/** About 15 characters a second of speech: the estimate a reservation is priced from. */
const CHARACTERS_PER_SECOND = 15;

/**
 * Text-to-speech and speech-to-text through the metered gateway: voices resolved from the
 * registry (or a vendor id), long texts split at sentence ends and joined, seconds measured from
 * the audio produced, every request logged with its outcome. Nothing is charged for audio that was
 * not delivered.
 */
export class VoiceService {
  constructor(private readonly dependencies: VoiceServiceDependencies) {}

  // ------------------------------------------------------------------ voices

  async resolveVoice(voice: string, provider: ProviderName | undefined): Promise<ResolvedVoice> {
    const { db, gateway } = this.dependencies;
    const named = await store.findVoiceByName(db, voice);
    let resolved: ResolvedVoice;
    if (named?.active) {
      if (provider && provider !== named.provider) throw new ValidationError('provider', `The voice ${voice} belongs to ${named.provider}, not ${provider}.`);
      resolved = { provider: named.provider as ProviderName, voiceId: named.providerVoiceId, label: named.name };
    } else if (provider) {
      resolved = { provider, voiceId: voice, label: voice };
    } else if (ELEVENLABS_VOICE_ID.test(voice)) {
      resolved = { provider: 'elevenlabs', voiceId: voice, label: voice };
    } else {
      throw new ValidationError('voice', `Unknown voice ${JSON.stringify(voice)}: name one from GET /v1/voices, or give provider with a vendor voice id.`);
    }
    if (!gateway.registry.has('speech', resolved.provider)) throw new ValidationError('provider', `${resolved.provider} does not offer speech.`);
    return resolved;
  }

  listVoices(filter: store.VoiceFilter): Promise<VoiceRow[]> {
    return store.listVoices(this.dependencies.db, filter);
  }

  /** An admin's new registry voice; 409 when the name is taken. */
  async addVoice(values: store.VoiceInsert): Promise<VoiceRow> {
    const { db } = this.dependencies;
    if (await store.findVoiceByName(db, values.name)) throw new ConflictError(`A voice named ${values.name} exists.`);
    return store.insertVoice(db, values);
  }

  /** An admin's change to a registry voice, named by id or name; 404 when there is none, 409 for a taken name. */
  async changeVoice(reference: string, changes: Partial<store.VoiceInsert>): Promise<VoiceRow> {
    const { db } = this.dependencies;
    const existing = /^[0-9a-f-]{36}$/i.test(reference) ? await store.findVoiceById(db, reference) : await store.findVoiceByName(db, reference);
    if (!existing) throw new NotFoundError('Voice');
    if (changes.name && changes.name !== existing.name && (await store.findVoiceByName(db, changes.name))) throw new ConflictError(`A voice named ${changes.name} exists.`);
    const row = await store.updateVoice(db, existing.id, changes);
    if (!row) throw new NotFoundError('Voice');
    return row;
  }

  /** A user's speech and transcription requests, newest first. */
  voiceRequestsOf(userId: string, limit: number): Promise<VoiceRequestRow[]> {
    return store.voiceRequestsOf(this.dependencies.db, userId, limit);
  }

  // ------------------------------------------------------------------ speech

  private checkText(text: string): void {
    if (text.trim() === '') throw new ValidationError('text', 'text is empty: give something to say.');
    const max = this.dependencies.config.voice.ttsMaxCharacters;
    if (text.length > max) throw new PayloadTooLargeError(`text has ${text.length} characters; at most ${max} are spoken in one request.`, { extra: { field: 'text', max_characters: max } });
  }

  private async begin(input: SpeakInput, voice: ResolvedVoice, concurrent: boolean): Promise<Lease<'speech'>> {
    try {
      return await this.dependencies.gateway.begin({
        modality: 'speech',
        provider: voice.provider,
        service: 'speech',
        user: input.user,
        model: input.model,
        feature: 'voice',
        estimate: { characters: input.text.length, seconds: Math.ceil(input.text.length / CHARACTERS_PER_SECOND) },
        characterId: input.characterId,
        requestId: input.requestId,
        idempotencyKey: input.idempotencyKey,
        concurrent,
      });
    } catch (error) {
      await this.log(input, 'speech', { provider: voice.provider, model: input.model, voice: voice.label, characters: input.text.length }, error, true);
      throw error;
    }
  }

  /** The whole audio at once. */
  async speak(input: SpeakInput): Promise<SpokenAudio> {
    this.checkText(input.text);
    const voice = await this.resolveVoice(input.voice, input.provider);
    const lease = await this.begin(input, voice, false);
    const adapter = lease.adapter;
    const model = input.model ?? adapter.defaultModel;
    let results: SpeechResult[];
    let audio: Buffer;
    let seconds: number;
    try {
      results = [];
      for (const text of splitText(input.text, adapter.maxCharacters(model))) {
        results.push(await adapter.synthesize({ text, voiceId: voice.voiceId, model, format: input.format, speed: input.speed, settings: input.settings, signal: input.signal }, lease.key));
      }
      audio = joinAudio(input.format, results.map((result) => result.audio));
      const measured = await measureSeconds(input.format, audio);
      if (measured === undefined) throw new UpstreamError(voice.provider, `${voice.provider} answered with something that is not ${input.format} audio.`, { upstreamStatus: 200 });
      const reported = results.every((result) => result.seconds !== undefined) ? results.reduce((sum, result) => sum + (result.seconds ?? 0), 0) : undefined;
      seconds = reported ?? measured;
    } catch (error) {
      const failure = await lease.fail(error);
      await this.log(input, 'speech', { provider: voice.provider, model, voice: voice.label, characters: input.text.length }, failure, false);
      throw failure;
    }
    const characters = results.reduce((sum, result) => sum + result.characters, 0);
    const { creditsMicro } = await lease.settle({ model, characters, seconds });
    await this.log(input, 'speech', { provider: voice.provider, model, voice: voice.label, characters, seconds }, undefined, false);
    return { audio, contentType: CONTENT_TYPES[input.format], format: input.format, provider: voice.provider, model, voice: voice.label, characters, seconds, creditsMicro };
  }

  /**
   * Audio as it is produced. Resolves once the vendor accepted the first part (so a refusal is
   * still a plain HTTP error); holds one of the plan's concurrent streams until it ends. A stream
   * the vendor breaks is released (no charge); a client that leaves pays for what it received.
   */
  async speakStream(input: SpeakInput): Promise<SpeechStreamAnswer> {
    this.checkText(input.text);
    const voice = await this.resolveVoice(input.voice, input.provider);
    const lease = await this.begin(input, voice, true);
    const adapter = lease.adapter;
    const model = input.model ?? adapter.defaultModel;
    // WAV is streamed as PCM under one open-ended header, so parts join without headers in between.
    const partFormat: SpeechFormat = input.format === 'wav' ? 'pcm' : input.format;
    const parts = splitText(input.text, adapter.maxCharacters(model));
    const request = (text: string) => ({ text, voiceId: voice.voiceId, model, format: partFormat, speed: input.speed, settings: input.settings, signal: input.signal });
    let first: SpeechStream;
    try {
      first = await adapter.stream(request(parts[0]!), lease.key);
    } catch (error) {
      const failure = await lease.fail(error);
      await this.log(input, 'speech', { provider: voice.provider, model, voice: voice.label, characters: input.text.length }, failure, false);
      throw failure;
    }
    const log = (outcome: { characters: number; seconds?: number }, error?: unknown) =>
      this.log(input, 'speech', { provider: voice.provider, model, voice: voice.label, ...outcome }, error, false);
    const measure = (delivered: Buffer[]) => measureSeconds(partFormat, Buffer.concat(delivered));
    const key = lease.key;
    async function* chunks(): AsyncGenerator<Buffer> {
      const delivered: Buffer[] = [];
      // Characters the vendor billed: finished parts as reported, a part in progress by its length.
      let characters = 0;
      let inProgress = 0;
      let failed = false;
      try {
        if (input.format === 'wav') yield wavHeader(undefined, PCM_SAMPLE_RATE);
        for (let index = 0; index < parts.length; index += 1) {
          inProgress = parts[index]!.length;
          const stream = index === 0 ? first : await adapter.stream(request(parts[index]!), key);
          for await (const chunk of stream.chunks) {
            delivered.push(chunk);
            yield chunk;
          }
          characters += stream.summary().characters;
          inProgress = 0;
        }
      } catch (error) {
        failed = true;
        const failure = await lease.fail(error);
        await log({ characters: 0 }, failure);
        throw failure;
      } finally {
        if (!failed) {
          // Finished, or the client left: charge the seconds that were delivered.
          const seconds = (await measure(delivered)) ?? 0;
          if (seconds > 0) {
            await lease.settle({ model, characters: characters + inProgress, seconds });
            await log({ characters: characters + inProgress, seconds });
          } else {
            const nothing = new UpstreamError(voice.provider, 'no audio was delivered');
            await lease.fail(nothing);
            await log({ characters: 0 }, nothing);
          }
        }
      }
    }
    return { contentType: CONTENT_TYPES[input.format], provider: voice.provider, model, voice: voice.label, chunks: chunks() };
  }

  // ------------------------------------------------------------------ transcription

  async transcribe(input: TranscribeInput): Promise<Transcript> {
    const { config, gateway } = this.dependencies;
    if (input.audio.length > config.voice.audioInputMaxBytes) {
      throw new PayloadTooLargeError(`The audio is larger than ${config.voice.audioInputMaxBytes} bytes.`, { extra: { field: input.field } });
    }
    const sniffed = await sniffAudio(input.audio, input.mimeType);
    if (!sniffed) throw new ValidationError(input.field, 'This is not audio Anima can read (mp3, wav, ogg, webm, flac, m4a).');
    const estimateSeconds = Math.max(1, Math.ceil(sniffed.seconds ?? input.audio.length / 16_000));
    const candidates = this.transcriptionCandidates(input.provider, input.model);
    let lease: Lease<'transcription'> | undefined;
    let chosen: { provider: ProviderName; model: string | undefined } | undefined;
    for (const candidate of candidates) {
      try {
        lease = await gateway.begin({
          modality: 'transcription',
          provider: candidate.provider,
          service: 'transcription',
          user: input.user,
          model: candidate.model,
          feature: 'voice',
          estimate: { seconds: estimateSeconds },
          characterId: input.characterId,
          requestId: input.requestId,
          idempotencyKey: input.idempotencyKey,
        });
        chosen = candidate;
        break;
      } catch (error) {
        // By key availability: a provider without a usable key gives way to the next one.
        if (error instanceof ProviderKeyRequiredError) continue;
        await this.log(input, 'transcription', { provider: candidate.provider, model: candidate.model, seconds: estimateSeconds }, error, true);
        throw error;
      }
    }
    if (!lease || !chosen) {
      const error = new ProviderKeyRequiredError(candidates.length === 1 ? candidates[0]!.provider : 'openai', config.setupUrl, `No usable key for transcription: add ${candidates.map((candidate) => `an ${candidate.provider}`).join(', ').replace(/, ([^,]*)$/, ' or $1')} key${config.setupUrl ? ` at ${config.setupUrl}` : ' with POST /v1/me/provider-keys'}.`);
      await this.log(input, 'transcription', { seconds: estimateSeconds }, error, true);
      throw error;
    }
    const model = chosen.model ?? lease.adapter.defaultModel;
    let result: TranscriptionResult;
    try {
      result = await lease.adapter.transcribe(
        { audio: input.audio, mimeType: sniffed.mimeType, filename: input.filename ?? `voice.${sniffed.extension}`, model, language: input.language, prompt: input.prompt, signal: input.signal },
        lease.key,
      );
    } catch (error) {
      const failure = await lease.fail(error);
      await this.log(input, 'transcription', { provider: chosen.provider, model, seconds: estimateSeconds }, failure, false);
      throw failure;
    }
    const seconds = result.seconds ?? sniffed.seconds ?? estimateSeconds;
    await lease.settle({ model: result.model, seconds, promptTokens: result.promptTokens, completionTokens: result.completionTokens });
    await this.log(input, 'transcription', { provider: chosen.provider, model: result.model, seconds, characters: result.text.length }, undefined, false);
    return { text: result.text.trim(), provider: chosen.provider, model: result.model, seconds, language: result.language, mimeType: sniffed.mimeType };
  }

  /** The provider a model name points at first, then the others in order, each with its default model. */
  private transcriptionCandidates(provider: ProviderName | undefined, model: string | undefined): Array<{ provider: ProviderName; model: string | undefined }> {
    const registered = TRANSCRIPTION_ORDER.filter((name) => this.dependencies.gateway.registry.has('transcription', name));
    if (provider) {
      if (!this.dependencies.gateway.registry.has('transcription', provider)) throw new ValidationError('provider', `${provider} does not offer transcription.`);
      return [{ provider, model }];
    }
    const preferred: ProviderName = model?.startsWith('scribe') ? 'elevenlabs' : model?.startsWith('gemini') ? 'gemini' : 'openai';
    const ordered = [preferred, ...registered.filter((name) => name !== preferred)].filter((name) => registered.includes(name));
    return ordered.map((name) => ({ provider: name, model: name === preferred ? model : undefined }));
  }

  // ------------------------------------------------------------------ request log

  private async log(
    input: VoiceCallContext,
    kind: 'speech' | 'transcription',
    details: { provider?: ProviderName | undefined; model?: string | undefined; voice?: string | undefined; characters?: number | undefined; seconds?: number | undefined },
    error: unknown,
    beforeCall: boolean,
  ): Promise<void> {
    try {
      await store.insertVoiceRequest(this.dependencies.db, {
        userId: input.user?.id ?? null,
        characterId: input.characterId ?? null,
        kind,
        source: input.source,
        provider: details.provider ?? null,
        model: details.model ?? null,
        voice: details.voice ?? null,
        characters: details.characters ?? 0,
        seconds: error === undefined ? (details.seconds ?? 0) : 0,
        status: statusOf(error, beforeCall),
        errorCode: error instanceof AppError ? error.code : isProviderFailure(error) ? contractErrorForProviderFailure(error).code : error === undefined ? null : 'internal_error',
        requestId: input.requestId ?? null,
      });
    } catch (logError) {
      this.dependencies.logger.warn({ err: logError }, 'could not log a voice request');
    }
  }
}

/** The request log's status: limits refused before the call are quota_exceeded (or rate_limited). */
function statusOf(error: unknown, beforeCall: boolean): 'success' | 'error' | 'quota_exceeded' | 'rate_limited' {
  if (error === undefined) return 'success';
  if (error instanceof ProviderCallError && error.kind === 'rate_limited') return 'rate_limited';
  if (error instanceof AppError) {
    const limit = error.extra.limit_name;
    if (beforeCall && (limit === 'voice_seconds_per_month' || error.code === 'insufficient_credits' || error.code.includes('quota'))) return 'quota_exceeded';
    if (beforeCall && error.code === 'rate_limited') return 'rate_limited';
    if (beforeCall && (error.status === 429 || error.code === 'insufficient_credits' || error.code.includes('quota'))) return 'quota_exceeded';
    if (error.status === 429) return 'rate_limited';
  }
  return 'error';
}
