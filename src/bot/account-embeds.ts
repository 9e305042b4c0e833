import { EmbedBuilder } from 'discord.js';
import { formatCredits } from './replies.js';

/**
 * `/usage` and `/balance` as readable embeds, from GET /v1/me/usage and GET /v1/wallet/balance.
 * Fields the server does not send are left out (an older server, a figure that is zero), never
 * shown as raw JSON.
 */

const ACCOUNT_COLOUR = 0x7c5cff;
const MAX_SERVICE_FIELDS = 10;

interface UsageFigures {
  requests?: number;
  tokens?: number;
  characters?: number;
  seconds?: number;
  images?: number;
  credits?: number;
  paid_by?: { user?: number; platform?: number };
}

export interface UsageReportView {
  days?: number;
  totals?: UsageFigures;
  services?: Record<string, UsageFigures>;
}

export interface WalletView {
  balance?: number;
  daily_remaining?: number;
  reserved?: number;
  plan?: { id?: string; name?: string; daily_credits?: number };
  next_refresh_at?: string;
}

const SERVICE_NAMES: Record<string, string> = {
  chat: '💬 Chat',
  vision: '👁️ Image descriptions',
  image: '🎨 Images',
  speech: '🔊 Speech',
  transcription: '🎙️ Voice messages',
  embedding: '🧠 Memory search',
  memory: '🧠 Memory',
};

const count = (value: number | undefined): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

function plural(value: number, one: string, many = `${one}s`): string {
  return `${value.toLocaleString('en-US', { maximumFractionDigits: 1 })} ${value === 1 ? one : many}`;
}

function duration(seconds: number): string {
  if (seconds < 90) return plural(Math.round(seconds * 10) / 10, 'second');
  return plural(Math.round((seconds / 60) * 10) / 10, 'minute');
}

/** One line per figure that is not zero: "12 requests · 3,400 tokens · 1.5 credits". */
function figuresLine(figures: UsageFigures): string {
  const parts = [plural(count(figures.requests), 'request')];
  if (count(figures.tokens) > 0) parts.push(plural(count(figures.tokens), 'token'));
  if (count(figures.characters) > 0) parts.push(plural(count(figures.characters), 'character'));
  if (count(figures.seconds) > 0) parts.push(duration(count(figures.seconds)));
  if (count(figures.images) > 0) parts.push(plural(count(figures.images), 'image'));
  parts.push(`${formatCredits(count(figures.credits))} credits`);
  return parts.join(' · ');
}

export function usageEmbed(report: UsageReportView, setupUrl: string): EmbedBuilder {
  const days = count(report.days) || 30;
  const embed = new EmbedBuilder().setColor(ACCOUNT_COLOUR).setTitle(`Your usage — last ${days} days`);
  const totals = report.totals ?? {};
  if (count(totals.requests) === 0) return embed.setDescription('Nothing used yet in this period.');
  embed.setDescription(`**Total:** ${figuresLine(totals)}`);
  const services = Object.entries(report.services ?? {})
    .filter(([, figures]) => count(figures.requests) > 0)
    .sort(([, a], [, b]) => count(b.requests) - count(a.requests))
    .slice(0, MAX_SERVICE_FIELDS);
  for (const [service, figures] of services) {
    embed.addFields({ name: SERVICE_NAMES[service] ?? service, value: figuresLine(figures), inline: false });
  }
  const own = count(totals.paid_by?.user);
  const platform = count(totals.paid_by?.platform);
  if (own > 0 || platform > 0) {
    embed.addFields({ name: 'Who paid', value: `${plural(own, 'request')} with your own keys (free here) · ${plural(platform, 'request')} on credits` });
  }
  return embed.setFooter({ text: `Your own provider keys: ${setupUrl}` });
}

export function balanceEmbed(wallet: WalletView, setupUrl: string): EmbedBuilder {
  const embed = new EmbedBuilder()
    .setColor(ACCOUNT_COLOUR)
    .setTitle('Your credits')
    .setDescription(`**${formatCredits(count(wallet.balance))}** credits to spend.\nMore credits, or your own provider key (then nothing is charged): ${setupUrl}`);
  if (wallet.daily_remaining !== undefined) embed.addFields({ name: "Today's daily credits left", value: formatCredits(count(wallet.daily_remaining)), inline: true });
  if (count(wallet.reserved) > 0) embed.addFields({ name: 'Held by answers in progress', value: formatCredits(count(wallet.reserved)), inline: true });
  if (wallet.plan?.name) {
    const daily = wallet.plan.daily_credits !== undefined ? ` (${formatCredits(count(wallet.plan.daily_credits))} credits a day)` : '';
    embed.addFields({ name: 'Plan', value: `${wallet.plan.name}${daily}`, inline: true });
  }
  const refresh = wallet.next_refresh_at ? Date.parse(wallet.next_refresh_at) : Number.NaN;
  if (Number.isFinite(refresh)) embed.addFields({ name: 'Daily credits refresh', value: `<t:${Math.floor(refresh / 1000)}:R>`, inline: true });
  return embed;
}
