import type { Logger } from 'pino';
import type { Executor } from '../../infra/db/database.js';
import { moderationEvents } from '../../infra/db/schema.js';
import { AppError } from '../../infra/http/errors.js';
import type { ModerationDirection, ModerationMatch, ModerationPolicy } from './policy.js';

/** 422 content_blocked: the request's text falls in a blocked category (named, so clients can explain). */
export class ContentBlockedError extends AppError {
  constructor(readonly category: string) {
    super(422, 'content_blocked', `The message was blocked by the content policy (category: ${category}).`, { extra: { category } });
  }
}

export interface ModerationSubject {
  userId: string | undefined;
  characterId: string | undefined;
}

/**
 * Checks chat text against the policy and records every block in moderation_events. Input that is
 * blocked is refused (ContentBlockedError); blocked output is reported to the caller, who
 * replaces the answer with a refusal.
 */
export class ModerationService {
  constructor(private readonly dependencies: { db: Executor; logger: Logger; policy: ModerationPolicy }) {}

  /** Throws ContentBlockedError (after recording it) when the input is blocked. */
  async checkInput(text: string, subject: ModerationSubject): Promise<void> {
    const match = await this.check(text, 'input', subject);
    if (match) throw new ContentBlockedError(match.category);
  }

  /** The blocked category of an answer, recorded; undefined when the answer may be shown. */
  async checkOutput(text: string, subject: ModerationSubject): Promise<ModerationMatch | undefined> {
    return this.check(text, 'output', subject);
  }

  /** Pure check without recording. */
  wouldBlock(text: string, direction: ModerationDirection): string | undefined {
    return this.dependencies.policy.check(text, direction)?.category;
  }

  /** Pure check of a streamed answer that grew since a check of its first `checkedUpTo` characters found nothing (see ModerationPolicy.checkGrown). */
  wouldBlockGrown(text: string, checkedUpTo: number, direction: ModerationDirection): string | undefined {
    return this.dependencies.policy.checkGrown(text, checkedUpTo, direction)?.category;
  }

  refusalFor(category: string): string {
    return `I can't share that reply: it was withheld by the content policy (${category.replaceAll('_', ' ')}).`;
  }

  private async check(text: string, direction: ModerationDirection, subject: ModerationSubject): Promise<ModerationMatch | undefined> {
    const match = this.dependencies.policy.check(text, direction);
    if (!match) return undefined;
    this.dependencies.logger.info({ direction, category: match.category, userId: subject.userId, characterId: subject.characterId }, 'content blocked by moderation policy');
    await this.dependencies.db.insert(moderationEvents).values({
      userId: subject.userId ?? null,
      characterId: subject.characterId ?? null,
      direction,
      category: match.category,
      excerpt: match.excerpt.slice(0, 500),
    });
    return match;
  }
}
