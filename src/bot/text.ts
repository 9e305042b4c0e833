/** Discord's limit on a message's content (also for interaction replies). */
export const DISCORD_MESSAGE_LIMIT = 2000;

/**
 * Splits an answer into messages of at most `limit` characters, at the latest paragraph, line or
 * sentence boundary that fits (then a space; a hard cut only inside one enormous word). An open
 * code block is closed at the cut and reopened in the next message, so formatting survives.
 */
export function splitMessage(text: string, limit = DISCORD_MESSAGE_LIMIT): string[] {
  const parts: string[] = [];
  let rest = text.trim();
  let reopenFence = '';
  while (rest.length > 0) {
    rest = reopenFence + rest;
    reopenFence = '';
    if (rest.length <= limit) {
      parts.push(rest);
      break;
    }
    // Room for a closing fence, should the cut fall inside a code block.
    const window = rest.slice(0, limit - 4);
    const cut = bestCut(window);
    let piece = rest.slice(0, cut).trimEnd();
    rest = rest.slice(cut).trimStart();
    const fences = piece.match(/```[^\n`]*/g) ?? [];
    if (fences.length % 2 === 1) {
      const opening = fences.at(-1) ?? '```';
      piece = `${piece}\n\`\`\``;
      reopenFence = `${opening}\n`;
    }
    parts.push(piece);
  }
  return parts.filter((part) => part.trim().length > 0);
}

function bestCut(window: string): number {
  const minimum = Math.floor(window.length * 0.5);
  const candidates: Array<(text: string) => number> = [
    (text) => lastBoundary(text, /\n\s*\n/g),
    (text) => lastBoundary(text, /\n/g),
    (text) => lastBoundary(text, /[.!?…。！？]["')\]»”’]*\s+/g),
    (text) => lastBoundary(text, /[;:,]\s+/g),
    (text) => lastBoundary(text, /\s+/g),
  ];
  for (const find of candidates) {
    const position = find(window);
    if (position >= minimum) return position;
  }
  return window.length;
}

/** The index just after the last match of `pattern` in `text`, or -1. */
function lastBoundary(text: string, pattern: RegExp): number {
  let position = -1;
  for (const match of text.matchAll(pattern)) position = match.index + match[0].length;
  return position;
}

/**
 * Provider API keys people paste by mistake. Deliberately specific (prefixes and lengths of real
 * keys), so ordinary words and ids are not mistaken for keys.
 */
const API_KEY_PATTERNS: RegExp[] = [
  /\bsk-or-v1-[a-f0-9]{32,}\b/i, // OpenRouter
  /\bsk-ant-[A-Za-z0-9_-]{20,}/, // Anthropic
  /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/, // OpenAI
  /\bsk_[a-f0-9]{40,}\b/, // ElevenLabs
  /\bAIza[0-9A-Za-z_-]{35}\b/, // Google / Gemini
  /\bxai-[A-Za-z0-9]{40,}/, // xAI
  /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[0-9a-f]{32}\b/i, // fal (id:secret)
  /\br8_[A-Za-z0-9]{30,}/, // Replicate
  /\bhf_[A-Za-z0-9]{30,}/, // Hugging Face
  /\bgsk_[A-Za-z0-9]{40,}/, // Groq
  /\banima_sk_[A-Za-z0-9_-]{16,}/, // Anima's own keys
  /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/, // a JWT (MiniMax keys are JWTs)
];

export function looksLikeApiKey(text: string): boolean {
  return API_KEY_PATTERNS.some((pattern) => pattern.test(text));
}

/** Whole-word, case-insensitive: "Mira" matches "hey mira!" but not "admiral". */
export function mentionsWord(text: string, word: string): boolean {
  const trimmed = word.trim();
  if (!trimmed) return false;
  const escaped = trimmed.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`, 'iu').test(text);
}
