import type { Infrastructure } from '../../container.js';
import { createSpeechProviders, type SpeechProvider } from '../../providers/speech/index.js';
import { createTranscriptionProviders, type TranscriptionProvider } from '../../providers/transcription/index.js';
import type { CharactersModule } from '../characters/index.js';
import type { ProviderGateway } from '../gateway/index.js';
import type { IdentityModule } from '../identity/index.js';
import type { MediaModule } from '../media/index.js';
import type { AppModule } from '../module.js';
import type { ChatVoicePort } from '../chat/voice-port.js';
import { ChatVoice } from './chat-voice.js';
import { registerVoiceRoutes } from './routes.js';
import { VoiceService } from './service.js';

export { VoiceService, type SpeakInput, type SpokenAudio, type Transcript, type TranscribeInput } from './service.js';

declare module '../gateway/registry.js' {
  interface ProviderAdapters {
    speech: SpeechProvider;
    transcription: TranscriptionProvider;
  }
}

export interface VoiceModule extends AppModule {
  service: VoiceService;
  /** Voice in chat (voice messages transcribed, spoken answers stored): the chat module's port. */
  chatVoice: ChatVoicePort;
}

export interface VoiceModuleDependencies extends Infrastructure {
  identity: IdentityModule;
  characters: CharactersModule;
  media: MediaModule;
  gateway: ProviderGateway;
}

/** Speech and transcription adapters on the gateway's registry, the voice registry, /v1/tts and friends. */
export function createVoiceModule(dependencies: VoiceModuleDependencies): VoiceModule {
  const { config, db, gateway } = dependencies;
  const logger = dependencies.logger.child({ module: 'voice' });
  const speech = createSpeechProviders(config);
  gateway.registry.register('speech', 'elevenlabs', speech.elevenlabs).register('speech', 'minimax', speech.minimax);
  const transcription = createTranscriptionProviders(config);
  gateway.registry
    .register('transcription', 'openai', transcription.openai)
    .register('transcription', 'elevenlabs', transcription.elevenlabs)
    .register('transcription', 'gemini', transcription.gemini);
  const service = new VoiceService({ config, db, gateway, logger });
  const chatVoice = new ChatVoice({ config, voice: service, media: dependencies.media.service, logger });
  return {
    name: 'voice',
    service,
    chatVoice,
    registerRoutes: (app) =>
      registerVoiceRoutes(app, { voice: service, identity: dependencies.identity.service, characters: dependencies.characters.service, media: dependencies.media.service, config }),
  };
}
