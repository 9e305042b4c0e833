import type { ProviderName } from '../../config.js';
import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { OpenAiCompatibleChatProvider } from '../chat/openai-compatible.js';
import { ProviderCallError } from '../chat/provider-error.js';
import { DEFAULT_DESCRIBE_PROMPT, type ImageDescription, type ImageInput, type VisionProvider } from './gemini.js';

/**
 * Image description through an OpenAI-compatible chat model that sees images (OpenAI gpt-4o-mini,
 * an OpenRouter vision model): one chat completion with the image as a base64 data URL, so the
 * provider never fetches anything on our behalf.
 */
export class OpenAiCompatibleVisionProvider implements VisionProvider {
  private readonly chat: OpenAiCompatibleChatProvider;

  constructor(options: { provider: Extract<ProviderName, 'openrouter' | 'openai'>; baseUrl: string; timeoutMs: number; fetch?: typeof fetch }) {
    this.chat = new OpenAiCompatibleChatProvider({ provider: options.provider, baseUrl: options.baseUrl, timeoutMs: options.timeoutMs, fetch: options.fetch });
    this.provider = options.provider;
  }

  private readonly provider: string;

  async describe(image: ImageInput, key: ResolvedProviderKey, options: { model: string; prompt?: string; signal?: AbortSignal }): Promise<ImageDescription> {
    const result = await this.chat.complete(
      {
        model: options.model,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: options.prompt ?? DEFAULT_DESCRIBE_PROMPT },
              { type: 'image_url', image_url: { url: `data:${image.mimeType};base64,${image.bytes.toString('base64')}` } },
            ],
          },
        ],
        maxTokens: 400,
        signal: options.signal,
      },
      key,
    );
    const text = result.text.trim();
    if (!text) throw new ProviderCallError(this.provider, 'invalid_request', `${this.provider} returned no description for the image.`, { upstreamStatus: 200 });
    return { text, model: result.model, usage: result.usage };
  }
}
