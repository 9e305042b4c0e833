/**
 * The bot's only way into Anima: its public HTTP API with the service key, acting for one Discord
 * user per call (X-User-Id / X-Username / X-Guild-Id / X-Channel-Id). Errors come back as
 * AnimaApiError carrying the problem+json fields the bot turns into words people understand.
 */

export interface Actor {
  /** The Discord user id; sent as `discord:<id>`. */
  discordUserId: string;
  displayName: string;
  /** Both null in direct messages: one private conversation per user and character. */
  guildId: string | null;
  channelId: string | null;
}

export class AnimaApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly body: Record<string, unknown>,
    /** Seconds, from Retry-After or the body's retry_after. */
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(`Anima answered ${status} ${code}: ${detail}`);
    this.name = 'AnimaApiError';
  }
}

/** Anima could not be reached at all (down, wrong URL, timed out). */
export class AnimaUnreachableError extends Error {
  constructor(readonly reason: 'timeout' | 'network', cause: unknown) {
    super(reason === 'timeout' ? 'Anima did not answer in time' : 'Anima could not be reached', { cause });
    this.name = 'AnimaUnreachableError';
  }
}

export interface BindingView {
  id: string;
  platform: 'discord';
  guild_id: string;
  channel_id: string | null;
  category_id: string | null;
  scope: 'channel' | 'category' | 'server';
  character: { id: string; slug: string; name: string; avatar_url: string | null };
  triggers: { mention: boolean; reply: boolean; name: boolean; words: string[]; every_message: boolean };
  free_will: { enabled: boolean; probability: number; cooldown_seconds: number };
  voice_replies: boolean;
}

export interface ChatAnswer {
  response: string;
  character_id: string;
  conversation_id: string;
  command: string | null;
  status?: string;
  audio_url?: string | null;
  transcript?: string | null;
}

export interface ChatRequest {
  content: string;
  attachment_url?: string;
  audio_url?: string;
  voice?: boolean;
}

/** What this Anima server offers beyond the core, read from its OpenAPI document. */
export interface AnimaCapabilities {
  /** The chat accepts `audio_url` (voice messages transcribed by Anima). */
  chatAudio: boolean;
  /** The chat accepts `voice: true` (spoken answers). */
  chatVoice: boolean;
}

export interface AnimaClientOptions {
  baseUrl: string;
  apiKey: string;
  timeoutMs: number;
  /** How long the capabilities read from /openapi.json are trusted. */
  capabilitiesTtlMs?: number;
}

export class AnimaClient {
  private capabilitiesCache: { value: AnimaCapabilities; expiresAt: number } | undefined;

  constructor(private readonly options: AnimaClientOptions) {}

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  async request<T>(method: string, path: string, options: { actor?: Actor | undefined; body?: unknown; signal?: AbortSignal } = {}): Promise<T> {
    const response = await this.send(method, path, options);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  /** An Anima endpoint that answers bytes (speech). */
  async requestBytes(method: string, path: string, options: { actor?: Actor | undefined; body?: unknown } = {}): Promise<{ bytes: Buffer; contentType: string }> {
    const response = await this.send(method, path, { ...options, accept: 'audio/*, application/octet-stream' });
    return { bytes: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type') ?? 'application/octet-stream' };
  }

  /** Bytes of an Anima URL (stored images, audio) or of any public URL. */
  async fetchBytes(url: string, actor?: Actor): Promise<{ bytes: Buffer; contentType: string }> {
    const absolute = new URL(url, this.options.baseUrl);
    const ours = absolute.origin === new URL(this.options.baseUrl).origin;
    const response = ours
      ? await this.send('GET', absolute.pathname + absolute.search, { actor })
      : await this.fetchWithTimeout(absolute.toString(), { method: 'GET' });
    if (!response.ok) throw new AnimaApiError(response.status, 'fetch_failed', `Could not fetch ${absolute.pathname}`, {}, undefined);
    return { bytes: Buffer.from(await response.arrayBuffer()), contentType: response.headers.get('content-type') ?? 'application/octet-stream' };
  }

  chat(character: string, actor: Actor, request: ChatRequest): Promise<ChatAnswer> {
    return this.request<ChatAnswer>('POST', `/v1/characters/${encodeURIComponent(character)}/chat`, {
      actor,
      body: { ...request, username: actor.displayName.slice(0, 100) || undefined, guild_id: actor.guildId ?? undefined, channel_id: actor.channelId ?? undefined },
    });
  }

  async resolveBindings(place: { guildId: string; channelId?: string | undefined; categoryId?: string | undefined }): Promise<BindingView[]> {
    const query = new URLSearchParams({ platform: 'discord', guild_id: place.guildId });
    if (place.channelId) query.set('channel_id', place.channelId);
    if (place.categoryId) query.set('category_id', place.categoryId);
    const resolved = await this.request<{ data: BindingView[] }>('GET', `/v1/channel-bindings/resolve?${query.toString()}`);
    return resolved.data;
  }

  async listBindings(guildId: string): Promise<BindingView[]> {
    const list = await this.request<{ data: BindingView[] }>('GET', `/v1/channel-bindings?platform=discord&guild_id=${encodeURIComponent(guildId)}`);
    return list.data;
  }

  async capabilities(): Promise<AnimaCapabilities> {
    if (this.capabilitiesCache && this.capabilitiesCache.expiresAt > Date.now()) return this.capabilitiesCache.value;
    let value: AnimaCapabilities = { chatAudio: false, chatVoice: false };
    try {
      const document = await this.request<OpenApiDocument>('GET', '/openapi.json');
      const properties = document.paths?.['/v1/characters/{id}/chat']?.post?.requestBody?.content?.['application/json']?.schema?.properties ?? {};
      value = { chatAudio: 'audio_url' in properties, chatVoice: 'voice' in properties };
    } catch {
      // An older or locked-down server: assume only the core chat.
    }
    this.capabilitiesCache = { value, expiresAt: Date.now() + (this.options.capabilitiesTtlMs ?? 300_000) };
    return value;
  }

  private async send(method: string, path: string, options: { actor?: Actor | undefined; body?: unknown; signal?: AbortSignal; accept?: string }): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.apiKey}`, accept: options.accept ?? 'application/json' };
    if (options.actor) {
      headers['x-user-id'] = `discord:${options.actor.discordUserId}`;
      // A name a header cannot carry (emoji, CJK) travels in the chat body's `username` instead.
      if (HEADER_SAFE.test(options.actor.displayName)) headers['x-username'] = options.actor.displayName;
      if (options.actor.channelId) headers['x-channel-id'] = options.actor.channelId;
      if (options.actor.guildId) headers['x-guild-id'] = options.actor.guildId;
    }
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    const response = await this.fetchWithTimeout(`${this.options.baseUrl}${path}`, { method, headers, body }, options.signal);
    if (response.ok) return response;
    const text = await response.text().catch(() => '');
    let parsed: Record<string, unknown> = {};
    try {
      parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    } catch {
      parsed = {};
    }
    // problem+json, or OpenAI's envelope {error:{message,code}} on the OpenAI-compatible routes.
    const envelope = (parsed.error && typeof parsed.error === 'object' ? parsed.error : parsed) as Record<string, unknown>;
    const retryHeader = Number(response.headers.get('retry-after'));
    const retryBody = Number(envelope.retry_after);
    throw new AnimaApiError(
      response.status,
      typeof envelope.code === 'string' ? envelope.code : `http_${response.status}`,
      typeof envelope.detail === 'string' ? envelope.detail : typeof envelope.message === 'string' ? envelope.message : response.statusText,
      envelope,
      Number.isFinite(retryHeader) && retryHeader > 0 ? retryHeader : Number.isFinite(retryBody) && retryBody > 0 ? retryBody : undefined,
    );
  }

  private async fetchWithTimeout(url: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    try {
      return await fetch(url, { ...init, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    } catch (error) {
      throw new AnimaUnreachableError(timeout.aborted ? 'timeout' : 'network', error);
    }
  }
}

interface OpenApiDocument {
  paths?: Record<string, { post?: { requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> } } }>;
}

/** Header values must be Latin-1 without control characters; display names may be anything. */
const HEADER_SAFE = /^[\x20-\x7e\xa0-\xff]{1,100}$/;
