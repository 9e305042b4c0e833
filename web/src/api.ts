// Every call the dashboard makes goes through here: the public API, bearer token, no cookies.
const KEY_STORAGE = 'anima.apiKey';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}
export function storeKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
  /** 404 and 503 on a whole API mean this server does not offer it. */
  get unavailable(): boolean {
    return this.status === 404 || this.status === 503;
  }
}

async function errorFrom(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { detail?: string; title?: string; error?: { message?: string } };
    message = body.detail ?? body.error?.message ?? body.title ?? message;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message);
}

export async function api<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
  const key = storedKey();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    headers['content-type'] = contentType;
    payload = body instanceof Blob || body instanceof ArrayBuffer ? body : JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, credentials: 'omit' });
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** The answer of POST /v1/characters/{id}/chat (the JSON answer, or the streamed `done` event). */
export interface ChatAnswer {
  response: string;
  conversation_id: string;
  memories_used: number;
  memory_ids: string[];
  status: 'complete' | 'partial' | 'blocked';
  command: string | null;
  audio_url?: string | null;
  audio_error?: { status: number; code: string; message: string } | null;
}

/** Where a chat turn happens: a DM (no place) or a server channel (only service/admin keys may name one). */
export interface ChatPlace {
  guild_id?: string;
  channel_id?: string;
}

/**
 * POST /v1/characters/{id}/chat with stream: true (Server-Sent Events): onToken per delta, onReplace
 * when the content policy withheld the answer; resolves with the `done` event (memory_ids, audio_url).
 */
export async function streamCharacterChat(
  character: string,
  body: { content: string; voice?: boolean } & ChatPlace,
  handlers: { onOpen?: () => void; onToken: (text: string) => void; onReplace: (text: string) => void },
  signal?: AbortSignal,
): Promise<ChatAnswer> {
  const response = await fetch(`/v1/characters/${encodeURIComponent(character)}/chat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${storedKey() ?? ''}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ ...body, stream: true }),
    credentials: 'omit',
    signal,
  });
  if (!response.ok || !response.body) throw await errorFrom(response);
  handlers.onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let boundary: number;
    while ((boundary = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = JSON.parse(line.slice(5).trim()) as { type: string; content?: string; error?: { status?: number; message?: string } } & Partial<ChatAnswer>;
        if (data.type === 'delta' && data.content) handlers.onToken(data.content);
        else if (data.type === 'replace') handlers.onReplace(data.content ?? '');
        else if (data.type === 'error') throw new ApiError(data.error?.status ?? 502, data.error?.message ?? 'the answer broke off');
        else if (data.type === 'done') return data as ChatAnswer;
      }
    }
  }
  throw new ApiError(502, 'the stream ended without an answer');
}

export const PROVIDERS = ['openrouter', 'openai', 'xai', 'gemini', 'elevenlabs', 'minimax', 'fal', 'stability', 'kie'] as const;
export type Provider = (typeof PROVIDERS)[number];

export interface ProviderKey {
  id: string;
  provider: Provider;
  name: string;
  masked: string;
  status: 'valid' | 'invalid' | 'unchecked' | 'unreachable';
  status_detail: string | null;
  active: boolean;
  created_at: string;
  last_checked_at: string | null;
}
export interface Character {
  id: string;
  slug: string;
  name: string;
  description?: string | null;
  visibility?: string;
}
export interface Me {
  id: string;
  username: string | null;
  plan: { name: string } | null;
}
export interface Figures {
  requests: number;
  tokens: number;
  characters: number;
  seconds: number;
  images: number;
  credits: number;
}
export interface UsageReport {
  days: number;
  totals: Figures;
  services: Record<string, Figures>;
  daily: DayUsage[];
}
export interface Wallet {
  balance: number;
  daily_remaining: number;
  reserved: number;
  plan: { name: string; daily_credits: number };
  next_refresh_at: string;
}
export interface LedgerEntry {
  id: string;
  kind: string;
  amount: number;
  balance_after: number;
  reason: string | null;
  created_at: string;
}

/** GET or POST returning bytes (image content, speech audio) with the bearer token: an object URL for <img>/<audio>. */
export async function apiBlob(method: string, path: string, body?: unknown): Promise<Blob> {
  const headers: Record<string, string> = { authorization: `Bearer ${storedKey() ?? ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit' });
  if (!response.ok) throw await errorFrom(response);
  return response.blob();
}

/** Saves a Blob or JSON value as a file download (object URL, no server round trip). */
export function download(name: string, data: unknown): void {
  const blob = data instanceof Blob ? data : new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export type MemoryScope = 'core' | 'user' | 'group';

/** Memories listed a page at a time (the API's most is 200). */
const MEMORY_PAGE = 100;

/** One page of a character's memories this key may see, newest first, in one scope or all. */
export function memoryPage(slug: string, scope: MemoryScope | '', cursor: string | null): Promise<{ data: Memory[]; next_cursor: string | null }> {
  const params = new URLSearchParams({ limit: String(MEMORY_PAGE) });
  if (scope) params.set('scope', scope);
  if (cursor) params.set('cursor', cursor);
  return api('GET', `/v1/characters/${encodeURIComponent(slug)}/memories?${params.toString()}`);
}
export interface Memory {
  id: string;
  character_id: string;
  scope: MemoryScope;
  user_id: string | null;
  guild_id: string | null;
  content: string;
  importance: number;
  created_at: string;
  updated_at: string;
  metadata: Record<string, unknown> | null;
  external_id: string | null;
}
export interface MemoryHit {
  id: string;
  scope: MemoryScope;
  source: string;
  content: string;
  score: number;
  similarity: number | null;
  relevant: boolean;
  importance: number;
  created_at: string;
}
export interface ImageItem {
  id: string;
  status: 'pending' | 'running' | 'succeeded' | 'failed';
  provider: string;
  model: string;
  style: string | null;
  prompt: string;
  width: number | null;
  height: number | null;
  content_type: string | null;
  content_url: string;
  title: string | null;
  favorite: boolean;
  credits_charged: number;
  error: { code: string; message: string } | null;
  created_at: string;
}
export interface Voice {
  id: string;
  name: string;
  provider: string;
  provider_voice_id: string;
  language: string | null;
  gender: string | null;
  description: string;
  cloned: boolean;
  active: boolean;
}
export interface Product {
  id: string;
  kind: 'credit_pack' | 'subscription';
  name: string;
  description: string | null;
  credits: number;
  price: number;
  price_cents: number;
  currency: string;
  interval: 'month' | 'year' | null;
  plan: string | null;
  active: boolean;
}
export interface DayUsage extends Figures {
  date: string;
  services: Record<string, Figures>;
}
export interface FullCharacter extends Character {
  description: string;
  personality: string;
  personality_traits: Record<string, number>;
  interaction_style: string;
  knowledge_domains: string[];
  backstory: string;
  scenario: string;
  voice_id: string | null;
  greeting: string | null;
  alternate_greetings: string[];
  model_settings: { provider?: string; model?: string; temperature?: number; max_tokens?: number };
  voice_settings: { provider?: string; model?: string; speed?: number };
  character_book: { entries: LoreEntry[]; [key: string]: unknown } | null;
  system_prompt: string | null;
}
export interface LoreEntry {
  keys: string[];
  content: string;
  [key: string]: unknown;
}
