/**
 * In-chat commands, sent as the message content and answered without a model call
 * (Shapes-compatible): !wack, !reset, !sleep, !info, !usage, !help, !voice (voice replies on/off in
 * this conversation); and !imagine <prompt>, which draws.
 */
export const CHAT_COMMANDS = ['wack', 'reset', 'sleep', 'info', 'usage', 'help', 'imagine', 'voice'] as const;
export type ChatCommand = (typeof CHAT_COMMANDS)[number];

/** The command a message is, or undefined for ordinary chat ("!wack" alone, any case, surrounding spaces). */
export function parseCommand(text: string): ChatCommand | undefined {
  const match = /^!([a-z]+)$/i.exec(text.trim());
  const name = match?.[1]?.toLowerCase();
  return (CHAT_COMMANDS as readonly string[]).includes(name ?? '') ? (name as ChatCommand) : undefined;
}

/** The prompt of `!imagine <prompt>` (any case), or undefined when the message is not one. */
export function parseImagine(text: string): string | undefined {
  const match = /^!imagine\s+([\s\S]+)$/i.exec(text.trim());
  return match?.[1]?.trim() || undefined;
}

export const HELP_TEXT = [
  'Commands:',
  '!wack — clear the short-term context of this conversation (messages stay for export)',
  '!reset — make the character forget its long-term memories of you',
  '!sleep — form long-term memories from this conversation now',
  '!info — the character, its model, this conversation and its memories',
  '!usage — your usage and credits over the last 30 days',
  '!imagine <prompt> — draw a picture',
  '!voice — turn spoken replies on or off in this conversation',
  '!help — this list',
].join('\n');
