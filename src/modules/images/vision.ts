import type { Config, ProviderName } from '../../config.js';
import { PayloadTooLargeError, ProviderKeyRequiredError, ValidationError } from '../../infra/http/errors.js';
import { safeFetch } from '../../infra/http/safe-fetch.js';
import { sniffImage, type SniffedImage } from '../../providers/images/index.js';
import type { ProviderGateway } from '../gateway/index.js';
import type { ProviderKeyVault } from '../identity/index.js';
import type { UserRow } from '../identity/store.js';

/** Vision providers in the order they are tried, with the model each uses. */
const VISION_ORDER: ReadonlyArray<Extract<ProviderName, 'gemini' | 'openai'>> = ['gemini', 'openai'];

export interface DescribeInput {
  user: UserRow;
  imageUrl?: string | undefined;
  imageBase64?: string | undefined;
  mimeType?: string | undefined;
  prompt?: string | undefined;
  requestId?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface DescribeResult {
  description: string;
  provider: ProviderName;
  model: string;
  image: SniffedImage;
  usage: { promptTokens: number; completionTokens: number };
}

/**
 * POST /v1/vision/describe: the image is fetched SSRF-safely (or decoded), size-limited and checked
 * by its bytes, then described through the gateway by Gemini, or an OpenAI vision model when only
 * OpenAI has a usable key for this user.
 */
export class VisionService {
  constructor(private readonly dependencies: { config: Readonly<Config>; gateway: ProviderGateway; vault: ProviderKeyVault }) {}

  async describe(input: DescribeInput): Promise<DescribeResult> {
    const { bytes, field } = await this.load(input);
    const image = sniffImage(bytes);
    if (!image) throw new ValidationError(field, 'This is not a PNG, JPEG or WebP image.');
    if (input.mimeType !== undefined && !input.mimeType.toLowerCase().startsWith('image/')) throw new ValidationError('mime_type', 'mime_type must be an image type (image/png, image/jpeg, image/webp).');
    const provider = await this.providerFor(input.user);
    const model = provider === 'gemini' ? this.dependencies.config.visionModel : this.dependencies.config.visionOpenAiModel;
    return this.dependencies.gateway.call({ modality: 'vision', provider, service: 'vision', user: input.user, model, estimate: { images: 1 }, requestId: input.requestId }, async (adapter, key) => {
      const described = await adapter.describe({ bytes, mimeType: image.contentType }, key, { model, prompt: input.prompt, signal: input.signal });
      return {
        result: { description: described.text, provider, model: described.model, image, usage: described.usage },
        usage: { model: described.model, promptTokens: described.usage.promptTokens, completionTokens: described.usage.completionTokens },
      };
    });
  }

  private async providerFor(user: UserRow): Promise<ProviderName> {
    const usable = await this.dependencies.vault.status(user);
    const provider = VISION_ORDER.find((candidate) => usable[candidate] && this.dependencies.gateway.registry.has('vision', candidate));
    if (!provider) throw new ProviderKeyRequiredError('gemini', this.dependencies.config.setupUrl, `No usable key for image description: add a gemini (or openai) key${this.dependencies.config.setupUrl ? ` at ${this.dependencies.config.setupUrl}` : ' with POST /v1/me/provider-keys'}.`);
    return provider;
  }

  private async load(input: DescribeInput): Promise<{ bytes: Buffer; field: string }> {
    const maxBytes = this.dependencies.config.images.maxBytes;
    const decode = (base64: string, field: string): Buffer => {
      const clean = base64.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new ValidationError(field, 'This is not base64.');
      if ((clean.length * 3) / 4 > maxBytes) throw new PayloadTooLargeError(`The image is larger than ${maxBytes} bytes.`);
      return Buffer.from(clean, 'base64');
    };
    if (input.imageBase64 !== undefined) {
      if (input.mimeType === undefined) throw new ValidationError('mime_type', 'Send mime_type with image_base64.');
      return { bytes: decode(input.imageBase64, 'image_base64'), field: 'image_base64' };
    }
    const url = input.imageUrl ?? '';
    const dataUrl = /^data:([a-z0-9.+/-]+);base64,(.*)$/is.exec(url);
    if (dataUrl) return { bytes: decode(dataUrl[2]!, 'image_url'), field: 'image_url' };
    const fetched = await safeFetch(url, { allowPrivate: this.dependencies.config.allowPrivateFetch, field: 'image_url', maxBytes, timeoutMs: 15_000, signal: input.signal });
    return { bytes: fetched.bytes, field: 'image_url' };
  }
}
