import type { ResolvedProviderKey } from '../../modules/identity/key-resolution.js';

/** One chat adapter interface for every OpenAI-compatible vendor (OpenRouter, OpenAI, xAI) and Gemini. */

export type ChatContentPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string; detail?: 'auto' | 'low' | 'high' } };

/** A function call the model asked for (OpenAI's `tool_calls[]` entry), kept in the wire shape. */
export interface ChatToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | ChatContentPart[] | null;
  /** Speaker name for group channels (OpenAI's `name` field). */
  name?: string;
  /** An assistant turn that called tools (from the client's history). */
  tool_calls?: ChatToolCall[];
  /** A tool result: the call it answers. */
  tool_call_id?: string;
}

/**
 * OpenAI request fields a client may send that Anima passes through to an OpenAI-compatible
 * vendor unchanged (provider-apis.md §13): tools and structured output belong to the client.
 */
export interface ChatPassthrough {
  tools?: unknown[];
  tool_choice?: unknown;
  parallel_tool_calls?: boolean;
  response_format?: unknown;
  stop?: string | string[];
  seed?: number;
  top_p?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  logit_bias?: Record<string, number>;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  /** Client fields relayed as they came (OpenAI-compatible vendors only). */
  passthrough?: ChatPassthrough;
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
  /** Set when the model called the client's tools instead of (or besides) answering. */
  toolCalls?: ChatToolCall[];
}

/** One streamed tool-call fragment exactly as the vendor sent it (merged by `index` on the client). */
export interface ChatToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

export type ChatStreamEvent =
  | { type: 'delta'; text: string }
  | { type: 'tool_call_delta'; toolCalls: ChatToolCallDelta[] }
  | { type: 'finish'; finishReason: string; model: string; usage: ChatUsage | undefined };

export interface ChatModelProvider {
  complete(request: ChatRequest, key: ResolvedProviderKey): Promise<ChatResult>;
  stream(request: ChatRequest, key: ResolvedProviderKey): AsyncIterable<ChatStreamEvent>;
}
