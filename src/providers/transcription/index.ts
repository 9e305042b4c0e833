import type { Config } from '../../config.js';
import { ElevenLabsTranscriptionProvider } from './elevenlabs.js';
import { GeminiTranscriptionProvider } from './gemini.js';
import { OpenAiTranscriptionProvider } from './openai-compatible.js';

export * from './transcription-provider.js';
export { ElevenLabsTranscriptionProvider } from './elevenlabs.js';
export { GeminiTranscriptionProvider } from './gemini.js';
export { OpenAiTranscriptionProvider } from './openai-compatible.js';

export function createTranscriptionProviders(config: Readonly<Config>, fetchImplementation?: typeof fetch) {
  const timeoutMs = config.upstreamTimeoutMs;
  return {
    openai: new OpenAiTranscriptionProvider({ provider: 'openai', baseUrl: config.providers.openai.baseUrl, timeoutMs, fetch: fetchImplementation }),
    elevenlabs: new ElevenLabsTranscriptionProvider({ baseUrl: config.providers.elevenlabs.baseUrl, timeoutMs, fetch: fetchImplementation }),
    gemini: new GeminiTranscriptionProvider({ baseUrl: config.providers.gemini.baseUrl, timeoutMs, fetch: fetchImplementation }),
  };
}
