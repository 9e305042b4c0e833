import type { Config } from '../../config.js';
import { ElevenLabsSpeechProvider } from './elevenlabs.js';
import { MiniMaxSpeechProvider } from './minimax.js';
import type { SpeechProvider } from './speech-provider.js';

export * from './speech-provider.js';
export { ElevenLabsSpeechProvider } from './elevenlabs.js';
export { MiniMaxSpeechProvider } from './minimax.js';
export { joinWav, readWav, wavHeader } from './wav.js';

export function createSpeechProviders(config: Readonly<Config>, fetchImplementation?: typeof fetch): { elevenlabs: SpeechProvider; minimax: SpeechProvider } {
  return {
    elevenlabs: new ElevenLabsSpeechProvider({ baseUrl: config.providers.elevenlabs.baseUrl, timeoutMs: config.upstreamTimeoutMs, fetch: fetchImplementation }),
    minimax: new MiniMaxSpeechProvider({ baseUrl: config.providers.minimax.baseUrl, timeoutMs: config.upstreamTimeoutMs, groupId: config.minimaxGroupId, fetch: fetchImplementation }),
  };
}
