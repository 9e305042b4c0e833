import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';
import { CallDeadline } from '../chat/call-deadline.js';
import type { ChatUsage } from '../chat/chat-model.js';
import { errorFromBody, joinText, transportError } from '../chat/gemini.js';
import { ProviderCallError } from '../chat/provider-error.js';

/**
 * Image description with Gemini (provider-apis §3): generateContent with the image as inline_data
 * (bare base64, never a link: Gemini does not fetch URLs), key in x-goog-api-key. Used when a
 * character's model cannot see images, and by POST /v1/vision/describe.
 */

export interface ImageInput {
  bytes: Buffer;
  mimeType: string;
}

export interface ImageDescription {
  text: string;
  model: string;
  usage: ChatUsage;
}

export interface VisionProvider {
  describe(image: ImageInput, key: ResolvedProviderKey, options: { model: string; prompt?: string; signal?: AbortSignal }): Promise<ImageDescription>;
}

export const DEFAULT_DESCRIBE_PROMPT =
  'Describe this image for someone who cannot see it: the main subject, notable details, any visible text, and the mood. Two to four sentences.';

export class GeminiVisionProvider implements VisionProvider {
  constructor(private readonly options: { baseUrl: string; timeoutMs: number; fetch?: typeof fetch }) {}

  async describe(image: ImageInput, key: ResolvedProviderKey, options: { model: string; prompt?: string; signal?: AbortSignal }): Promise<ImageDescription> {
    const deadline = new CallDeadline(this.options.timeoutMs, options.signal);
    const model = options.model.replace(/^models\//, '');
    try {
      let response: Response;
      try {
        response = await (this.options.fetch ?? fetch)(`${this.options.baseUrl}/v1beta/models/${encodeURIComponent(model)}:generateContent`, {
          method: 'POST',
          headers: { 'x-goog-api-key': key.apiKey, 'content-type': 'application/json' },
          body: JSON.stringify({
            contents: [
              {
                role: 'user',
                parts: [{ text: options.prompt ?? DEFAULT_DESCRIBE_PROMPT }, { inline_data: { mime_type: image.mimeType, data: image.bytes.toString('base64') } }],
              },
            ],
          }),
          signal: deadline.signal,
        });
      } catch (error) {
        throw transportError(error, deadline, this.options.timeoutMs);
      }
      const body = (await response.json().catch(() => ({}))) as Parameters<typeof errorFromBody>[0];
      if (!response.ok) throw errorFromBody(body, response.status, key, undefined);
      const text = joinText(body).trim();
      if (!text) throw new ProviderCallError('gemini', 'invalid_request', 'gemini returned no description for the image (it may have been blocked).', { upstreamStatus: 200 });
      const usage = (body as { usageMetadata?: { promptTokenCount?: number; candidatesTokenCount?: number } }).usageMetadata;
      return { text, model, usage: { promptTokens: usage?.promptTokenCount ?? 0, completionTokens: usage?.candidatesTokenCount ?? 0 } };
    } finally {
      deadline.dispose(true);
    }
  }
}
