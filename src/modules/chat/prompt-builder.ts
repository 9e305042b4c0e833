import type { ChatContentPart, ChatMessage } from '../../providers/chat/chat-model.js';
import { activateLorebook, buildSystemPrompt, substituteMacros, type Character, type LorebookActivation } from '../characters/index.js';

/**
 * Builds the messages sent to the model for one turn. Pure: the service gathers the inputs.
 *
 * Order: one system message (lorebook before_char entries, the character's system prompt,
 * lorebook after_char entries, recalled memories, the client's own system messages), then the
 * history within its token budget (oldest dropped first), then the post-history instructions,
 * then the new user message (with image parts, or image descriptions, when there are images).
 * Where several people talk to the character (a server channel with more than one speaker so
 * far), user turns carry "Name: " — only real names: a user without one is never called "User".
 */

export interface HistoryMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  speakerName: string | null;
  /** Stored count; recounted when 0. */
  tokenCount: number;
}

export interface PromptInput {
  character: Character;
  /** What {{user}} becomes in the character's texts. */
  userName: string;
  /** The speaker's own name for the "Name: " prefix in group conversations; none when unknown. */
  speakerName: string | null;
  /** Stored history after the last context reset, oldest first. */
  history: HistoryMessage[];
  /** More than one person talks in this conversation: user turns carry their speaker's name. */
  group: boolean;
  memorySection: string;
  /** System messages the client sent (OpenAI endpoint). */
  clientSystemMessages: string[];
  /** Earlier turns the client sent itself (OpenAI endpoint); when non-empty they replace the stored history. */
  clientHistory: ChatMessage[];
  /** Null when the turn continues the client's history after tool results (it ends with them). */
  newMessage: { text: string; imageParts: ChatContentPart[]; imageDescriptions: string[] } | null;
  historyTokenBudget: number;
  lorebookTokenBudget: number;
  countTokens: (text: string) => number;
}

export interface BuiltPrompt {
  messages: ChatMessage[];
  lorebook: LorebookActivation;
  /** How many earlier messages made it into the prompt. */
  historyMessages: number;
  /** Our own token estimate of the whole prompt (the provider's count is what gets metered). */
  estimatedTokens: number;
}

/** The memory section and, when its maker counted it (the memory service does), its token count. */
export interface MemorySection {
  text: string;
  tokens?: number | undefined;
}

/**
 * A turn's prompt before its memories are known: everything else is fitted, so the turn can reserve
 * credits on `estimateWithMemory(budget)` while recall still runs, then `complete` it.
 */
export interface PromptDraft {
  /** Our estimate with a memory section of `memoryTokens` (0: none) — with the budget, an upper bound. */
  estimateWithMemory(memoryTokens: number): number;
  complete(memory: MemorySection): BuiltPrompt;
}

/** Tokens a section separator ("\n\n" between system sections) is counted as. */
const SEPARATOR_TOKENS = 1;

export function buildPrompt(input: PromptInput & { memorySectionTokens?: number }): BuiltPrompt {
  return draftPrompt(input).complete({ text: input.memorySection, tokens: input.memorySectionTokens });
}

export function draftPrompt(input: Omit<PromptInput, 'memorySection'>): PromptDraft {
  const { character, countTokens } = input;
  const names = { char: character.name, user: input.userName };
  const macros = (text: string) => substituteMacros(text, names);

  const userText = composeUserText(input);
  const fitted =
    input.clientHistory.length > 0
      ? { messages: input.clientHistory, tokens: input.clientHistory.reduce((sum, message) => sum + countTokens(textOf(message.content)), 0) }
      : fitHistory(input.history, input.historyTokenBudget, input.group, countTokens);
  const earlier = fitted.messages;
  const historyTokens = fitted.tokens;
  const lorebook = activateLorebook(
    character.characterBook,
    [...earlier.map((message) => ({ content: textOf(message.content) })), { content: input.newMessage?.text ?? '' }],
    { tokenBudget: input.lorebookTokenBudget, countTokens },
  );

  const present = (sections: string[]) => sections.filter((section) => Boolean(section && section.trim()));
  const leading = present([
    lorebook.beforeCharText && macros(lorebook.beforeCharText),
    buildSystemPrompt(character, { user: input.userName }),
    lorebook.afterCharText && macros(lorebook.afterCharText),
    input.group ? `This is a group conversation in a server channel; user messages start with the speaker's name where it is known.` : '',
  ]);
  const trailing = present(input.clientSystemMessages);
  const postHistory = character.postHistoryInstructions?.trim() ? macros(character.postHistoryInstructions) : undefined;
  // Tokenizing is the costly part of building a prompt: every section is counted on its own (the
  // character's sections are the same text turn after turn, so the counter's memo answers), history
  // counts were stored with the messages, and the memory service counts its own section. Counting
  // the joined system message instead re-tokenized the whole character card every turn.
  const sectionTokens = (sections: string[]) => sections.reduce((sum, section) => sum + countTokens(section) + SEPARATOR_TOKENS, 0);
  const withoutMemory =
    sectionTokens(leading) + sectionTokens(trailing) + historyTokens + countTokens(userText) + (character.postHistoryInstructions ? countTokens(character.postHistoryInstructions) : 0);

  const estimateWithMemory = (memoryTokens: number) => withoutMemory + (memoryTokens > 0 ? memoryTokens + SEPARATOR_TOKENS : 0);
  return {
    estimateWithMemory,
    complete(memory: MemorySection): BuiltPrompt {
      const memoryText = memory.text.trim() ? macros(memory.text) : '';
      const systemSections = memoryText ? [...leading, memoryText, ...trailing] : [...leading, ...trailing];
      const messages: ChatMessage[] = [{ role: 'system', content: systemSections.join('\n\n') }, ...earlier];
      if (postHistory) messages.push({ role: 'system', content: postHistory });
      const speakerPrefix = input.group && input.speakerName ? `${input.speakerName}: ` : '';
      if (input.newMessage) {
        messages.push({
          role: 'user',
          content: input.newMessage.imageParts.length > 0 ? [{ type: 'text', text: speakerPrefix + userText }, ...input.newMessage.imageParts] : speakerPrefix + userText,
        });
      }
      const estimatedTokens = estimateWithMemory(memoryText ? (memory.tokens ?? countTokens(memoryText)) : 0);
      return { messages, lorebook, historyMessages: earlier.length, estimatedTokens };
    },
  };
}

function composeUserText(input: Pick<PromptInput, 'newMessage'>): string {
  if (!input.newMessage) return '';
  const descriptions = input.newMessage.imageDescriptions.map((description) => `[The user shared an image. It shows: ${description}]`);
  return [input.newMessage.text, ...descriptions].filter(Boolean).join('\n\n');
}

/** Newest messages first until the budget is spent; returned oldest first. */
function fitHistory(history: HistoryMessage[], budget: number, group: boolean, countTokens: (text: string) => number): { messages: ChatMessage[]; tokens: number } {
  const kept: ChatMessage[] = [];
  let spent = 0;
  for (let index = history.length - 1; index >= 0; index -= 1) {
    const message = history[index]!;
    const prefix = group && message.role === 'user' && message.speakerName ? `${message.speakerName}: ` : '';
    const tokens = (message.tokenCount > 0 ? message.tokenCount : countTokens(message.content)) + (prefix ? countTokens(prefix) : 0);
    if (spent + tokens > budget) break;
    spent += tokens;
    kept.push({ role: message.role, content: prefix + message.content });
  }
  return { messages: kept.reverse(), tokens: spent };
}

export function textOf(content: string | ChatContentPart[] | null): string {
  if (content === null) return '';
  return typeof content === 'string' ? content : content.flatMap((part) => (part.type === 'text' ? [part.text] : [])).join('\n');
}
