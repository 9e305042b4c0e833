import type { Logger } from 'pino';
import type { Config } from '../../config.js';
import type { ImageProviderName } from '../../providers/images/index.js';
import { buildSystemPrompt, countTokens, resolveModelSettings, type Character } from '../characters/index.js';
import type { ImagineCommand } from '../chat/service.js';
import type { ProviderGateway } from '../gateway/index.js';
import type { UserRow } from '../identity/store.js';
import type { ProviderKeyVault } from '../identity/index.js';
import type { ModerationService } from '../moderation/index.js';
import { errorOfRow, type ImagesService } from './service.js';

/** The most the in-character line may say (one or two sentences). */
export const CAPTION_MAX_TOKENS = 120;

export interface ImagineDependencies {
  config: Readonly<Config>;
  logger: Logger;
  images: ImagesService;
  gateway: ProviderGateway;
  vault: ProviderKeyVault;
  /** The chat's output policy: a line it would block is not said (the plain caption stands in). */
  moderation: Pick<ModerationService, 'wouldBlock'>;
}

/**
 * `!imagine <prompt>` in a chat: draws with the character's image settings
 * (`model_settings.image`: provider, style, model) when the user may use that provider, else
 * with the user's usable provider; waits for the picture like the HTTP route does; then the
 * character presents it in its own voice — one short line from its chat model through the
 * gateway, billed as chat. The picture is the answer: when that line cannot be had (no chat key,
 * no credits, the model fails) the plain caption stands in for it.
 */
export function createImagineCommand(dependencies: ImagineDependencies): ImagineCommand {
  const { config, images } = dependencies;
  return async ({ user, character, prompt, requestId, signal }) => {
    const preferred = await characterImageChoice(dependencies, user, character);
    const generation = await images.generate({ user, prompt, characterId: character.id, requestId, ...preferred });
    const [row] = await images.waitFor(generation.generationId, config.images.waitMs, signal);
    if (!row) throw new Error('a generation without images');
    if (row.status === 'failed') throw errorOfRow(row);
    if (row.status !== 'succeeded') return `${character.name} is still drawing “${prompt}”. It will be in your gallery: /v1/images/${row.id}`;
    const url = (await images.signedUrl(row)) ?? `/v1/images/${row.id}/content`;
    const drawn = row.revisedPrompt ?? prompt;
    const line = await inCharacterLine(dependencies, { user, character, prompt: drawn, requestId, signal });
    return `${line ?? `${character.name} drew “${drawn}”:`}\n${url}`;
  };
}

/** The character's provider, style and model — the provider only when this user may use it (own or platform key). */
async function characterImageChoice(
  dependencies: ImagineDependencies,
  user: UserRow,
  character: Character,
): Promise<{ provider?: ImageProviderName; style?: 'fast' | 'quality' | 'pro'; model?: string }> {
  const settings = character.modelSettings.image;
  if (!settings) return {};
  const choice: { provider?: ImageProviderName; style?: 'fast' | 'quality' | 'pro'; model?: string } = {};
  if (settings.style) choice.style = settings.style;
  if (settings.provider && (await dependencies.vault.status(user))[settings.provider]) {
    choice.provider = settings.provider;
    if (settings.model) choice.model = settings.model;
  } else if (settings.provider) {
    dependencies.logger.info({ characterId: character.id, provider: settings.provider }, 'the character’s image provider is not usable for this user; drawing with the user’s');
  }
  return choice;
}

/** One or two sentences from the character about the picture, or undefined when the chat model cannot be had. */
async function inCharacterLine(
  dependencies: ImagineDependencies,
  request: { user: UserRow; character: Character; prompt: string; requestId: string; signal: AbortSignal },
): Promise<string | undefined> {
  const { config, gateway, logger } = dependencies;
  const { user, character } = request;
  const settings = resolveModelSettings(character, config);
  const userName = user.username?.trim() || 'the person you are talking with';
  const messages = [
    { role: 'system' as const, content: buildSystemPrompt(character, { user: userName }) },
    {
      role: 'user' as const,
      content:
        `(You have just drawn a picture for ${userName}; it shows: “${request.prompt}”. ` +
        'Present it to them in one or two short sentences, in your own voice and manner. No links, no markdown, no description of how it was made.)',
    },
  ];
  const promptTokens = messages.reduce((total, message) => total + countTokens(message.content), 0);
  let lease;
  try {
    lease = await gateway.begin({
      modality: 'chat',
      provider: settings.provider,
      service: 'chat',
      user,
      model: settings.model,
      estimate: { promptTokens, maxCompletionTokens: CAPTION_MAX_TOKENS },
      characterId: character.id,
      requestId: request.requestId,
    });
  } catch (error) {
    logger.info({ characterId: character.id, reason: error instanceof Error ? error.message : String(error) }, 'no in-character line for !imagine (no chat key or allowance)');
    return undefined;
  }
  try {
    const result = await lease.adapter.complete({ model: settings.model, messages, temperature: settings.temperature, maxTokens: CAPTION_MAX_TOKENS, signal: request.signal }, lease.key);
    await lease.settle({ model: result.model || settings.model, promptTokens: result.usage.promptTokens, completionTokens: result.usage.completionTokens, providerCostUsd: result.usage.costUsd });
    const line = result.text.trim();
    const blocked = dependencies.moderation.wouldBlock(line, 'output');
    if (blocked) {
      logger.info({ characterId: character.id, category: blocked }, 'the in-character line for !imagine was withheld by the content policy');
      return undefined;
    }
    return line === '' ? undefined : line;
  } catch (error) {
    const reported = await lease.fail(error);
    logger.warn({ characterId: character.id, reason: reported instanceof Error ? reported.message : String(reported) }, 'the in-character line for !imagine failed; answering with the picture alone');
    return undefined;
  }
}
