import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';

/** One chat adapter interface for every OpenAI-compatible vendor (OpenRouter, OpenAI, xAI) and Gemini. */

export type ChatContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: 'auto' | 'low' | 'high' } };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string | ChatContentPart[];
  /** Speaker name for group channels (OpenAI's `name` field). */
  name?: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  signal?: AbortSignal;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  /** The provider's own cost figure in USD where it gives one (OpenRouter's usage.cost). */
  costUsd?: number;
}

export interface ChatResult {
  text: string;
  finishReason: string;
  model: string;
  usage: ChatUsage;
}

export type ChatStreamEvent = { type: 'delta'; text: string } | { type: 'finish'; finishReason: string; model: string; usage: ChatUsage | undefined };

export interface ChatModelProvider {
  complete(request: ChatRequest, key: ResolvedProviderKey): Promise<ChatResult>;
  stream(request: ChatRequest, key: ResolvedProviderKey): AsyncIterable<ChatStreamEvent>;
}
