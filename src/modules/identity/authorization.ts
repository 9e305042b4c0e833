import { ForbiddenError, NotFoundError } from '../../infra/http/errors.js';
import type { ApiKeyRole } from './store.js';

/**
 * Who is asking, for authorization: the credential's role and the end user it acts as.
 *
 * - a user key (or OIDC token) acts as its own user;
 * - a service key acts as the user named by `X-User-Id`, or else as the key's own user
 *   (`keyUserId`, Shapes.inc's rule: without `X-User-Id` the caller is the key's owner);
 * - an admin key acts as `X-User-Id` when given; without it `userId` is undefined and it sees everything.
 *
 * The role alone never grants access to someone else's objects: only admins see everything.
 */
export interface Actor {
  role: ApiKeyRole;
  userId?: string | undefined;
  /** The user tied to the service key itself (its characters are visible to the users it acts for). */
  keyUserId?: string | undefined;
}

/**
 * The one authorization rule per object type. Routes of every module (characters, memories,
 * conversations, provider keys, and later images, voice media, wallet) ask here; an object the
 * actor may not see answers 404 (existence is not revealed), a visible object it may not change 403.
 */
export const authorization = {
  isAdmin(actor: Actor): boolean {
    return actor.role === 'admin';
  },

  /** Whether the actor owns an object belonging to `ownerUserId` (admins own everything). */
  owns(actor: Actor, ownerUserId: string | null | undefined): boolean {
    if (actor.role === 'admin') return true;
    return ownerUserId !== null && ownerUserId !== undefined && actor.userId === ownerUserId;
  },

  /**
   * Only a caller that can vouch for membership — a service key (the bot) or an admin — may place
   * a user in a shared channel or server. A user key's chats are its own.
   */
  mayVouchForPlace(actor: Actor): boolean {
    return actor.role !== 'user';
  },

  /** Public visibility (listed for everyone and in /v1/models) needs a service or admin key. */
  mayPublish(actor: Actor): boolean {
    return actor.role !== 'user';
  },

  character: {
    canView(character: { ownerUserId: string | null; visibility: string }, actor: Actor): boolean {
      if (character.visibility === 'public' || actor.role === 'admin') return true;
      if (character.ownerUserId === null) return false;
      return character.ownerUserId === actor.userId || (actor.role === 'service' && character.ownerUserId === actor.keyUserId);
    },
    canChange(character: { ownerUserId: string | null }, actor: Actor): boolean {
      return authorization.owns(actor, character.ownerUserId);
    },
  },

  memory: {
    /**
     * Changing a memory: the user's own user-scope memories; core memories of characters the
     * actor owns; group (server) memories only for the service that vouches for the server.
     */
    canChange(
      row: { scope: string; userId: string | null },
      characterOwnerUserId: string | null | undefined,
      actor: Actor,
    ): boolean {
      if (actor.role === 'admin') return true;
      if (row.scope === 'user') return row.userId !== null && row.userId === actor.userId;
      if (row.scope === 'core') return characterOwnerUserId !== null && characterOwnerUserId !== undefined && characterOwnerUserId === actor.userId;
      if (row.scope === 'group') return actor.role === 'service';
      return false;
    },
  },
} as const;

/** 404 unless the actor owns the object (the shape used for user-owned rows: keys, media, wallets). */
export function assertOwns(actor: Actor, ownerUserId: string | null | undefined, what: string): void {
  if (!authorization.owns(actor, ownerUserId)) throw new NotFoundError(what);
}

/** 403 for a user key that names a channel or server. */
export function assertMayVouchForPlace(actor: Actor, place: { guildId?: string | undefined; channelId?: string | undefined }): void {
  if ((place.guildId !== undefined || place.channelId !== undefined) && !authorization.mayVouchForPlace(actor)) {
    throw new ForbiddenError(
      'Only service and admin keys may place a user in a channel or server (X-Channel-Id, X-Guild-Id, channel_id, guild_id): a user key cannot prove membership, and its chats are its own.',
      { extra: { field: place.channelId !== undefined ? 'X-Channel-Id' : 'X-Guild-Id' } },
    );
  }
}
