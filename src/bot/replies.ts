import { EmbedBuilder } from 'discord.js';
import { AnimaApiError, AnimaUnreachableError } from './anima-client.js';

/** What the bot posts: plain text and embeds, never a stack trace or a raw JSON body. */
export interface BotReply {
  content?: string;
  embeds?: EmbedBuilder[];
}

const ANIMA_COLOUR = 0x7c5cff;

/** Bring your own key: where to add it, and why never here. */
export function setupEmbed(setupUrl: string, provider?: string, link?: { code: string; expiresAt: string }): EmbedBuilder {
  const signIn = link
    ? `1. Open **${setupUrl}** (or the dashboard) and sign in with the code **\`${link.code}\`**: it is yours alone, works once and expires <t:${Math.floor(Date.parse(link.expiresAt) / 1000)}:R>.`
    : `1. Open **${setupUrl}** and sign in.`;
  return new EmbedBuilder()
    .setColor(ANIMA_COLOUR)
    .setTitle('Set up your own provider key')
    .setURL(setupUrl)
    .setDescription(
      [
        provider ? `This needs a key for **${provider}**, and none is set up for you.` : 'Characters here talk through AI providers (OpenRouter, Gemini, ElevenLabs…) with **your own key**.',
        '',
        signIn,
        '2. Add your provider key there: it is checked with the provider and stored encrypted.',
        '3. Come back and talk: your messages are answered with your key.',
        '',
        '**Never paste a key in Discord.** Messages that look like keys are deleted; if you posted one, revoke it at the provider.',
      ].join('\n'),
    );
}

/** Turns a failure into words for the channel. */
export function describeError(error: unknown, setupUrl: string): BotReply {
  if (error instanceof AnimaUnreachableError) {
    return {
      content: error.reason === 'timeout' ? 'Sorry, that took too long and I gave up. Please try again in a moment.' : "Sorry, I can't reach my brain right now. Please try again in a moment.",
    };
  }
  if (!(error instanceof AnimaApiError)) return { content: 'Sorry, something went wrong on my side. Please try again.' };
  const { status, code, body } = error;
  if (status === 402 && code === 'provider_key_required') {
    return { content: 'I need a provider key to answer you.', embeds: [setupEmbed(stringOr(body.setup_url, setupUrl), stringOr(body.provider, undefined))] };
  }
  if (status === 402 && code === 'insufficient_credits') {
    const balance = numberOr(body.balance, undefined);
    const cost = numberOr(body.estimated_cost ?? body.cost, undefined);
    return {
      content: [
        "You're out of credits for that.",
        balance !== undefined ? `Balance: **${formatCredits(balance)}** credits${cost !== undefined ? `, this needs about **${formatCredits(cost)}**` : ''}.` : '',
        'Daily credits refresh at midnight UTC. For more, buy a credit pack or add your own provider key (then nothing is charged):',
        setupUrl,
      ]
        .filter(Boolean)
        .join('\n'),
    };
  }
  if (status === 402) return { content: `That needs a paid plan or your own key: ${setupUrl}` };
  if (status === 429) {
    const seconds = error.retryAfterSeconds;
    return { content: seconds ? `Slow down a little: try again in ${formatWait(seconds)}.` : 'Slow down a little: try again in a minute.' };
  }
  if (status === 404 && code === 'not_found' && /character/i.test(error.detail)) {
    return { content: 'That character no longer exists here. Someone with Manage Channels can rebind this channel with `/character bind`.' };
  }
  if (status === 413) return { content: 'That attachment is too large for me.' };
  if (status === 504) return { content: 'Sorry, the AI provider took too long to answer. Please try again.' };
  if (status >= 500) return { content: 'Sorry, something went wrong while answering. Please try again in a moment.' };
  // Our own 4xx details are written for people (content policy, a bad attachment…); keep them short.
  return { content: `Sorry, I can't do that: ${error.detail.slice(0, 300)}` };
}

/** A feature the Anima server does not offer (its route answered 404). */
export function isMissingFeature(error: unknown): boolean {
  return error instanceof AnimaApiError && error.status === 404 && /^No route for /.test(error.detail);
}

function stringOr<T>(value: unknown, fallback: T): string | T {
  return typeof value === 'string' && value ? value : fallback;
}

function numberOr<T>(value: unknown, fallback: T): number | T {
  const number = typeof value === 'string' ? Number(value) : value;
  return typeof number === 'number' && Number.isFinite(number) ? number : fallback;
}

export function formatCredits(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function formatWait(seconds: number): string {
  if (seconds < 90) return `${Math.ceil(seconds)} second${Math.ceil(seconds) === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return minutes < 90 ? `${minutes} minutes` : `${Math.ceil(minutes / 60)} hours`;
}
