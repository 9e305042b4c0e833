import { jsonSchemaTransform } from 'fastify-type-provider-zod';

/**
 * What /openapi.json and /docs teach: a quickstart, a description per tag, `servers`, and the
 * end-user context headers as documented parameters. The headers are added here, in one place,
 * from each route's `config.contextHeaders` (or its auth level), so routes added later get them too.
 */

/**
 * Which context headers a route reads (documentation only; the handlers read them through
 * `endUserContext` in modules/identity/auth.ts):
 * - `user`: X-User-Id and X-Username (the default for every authenticated route but admin-only ones);
 * - `place`: also X-Channel-Id and X-Guild-Id (chat, group memories);
 * - `none`: neither (public and admin-only routes by default).
 */
export type ContextHeaders = 'user' | 'place' | 'none';

declare module 'fastify' {
  interface FastifyContextConfig {
    contextHeaders?: ContextHeaders;
  }
}

const QUICKSTART = `AI characters with personality, voice and lasting memory — the open replacement for Shapes.inc.

## Quickstart

1. **The admin key.** On its first start without \`ADMIN_API_KEY\`, the server generates an administrator
   key and prints it once in its log ("ADMIN_API_KEY was not set, so an administrator key was generated").
   Or set \`ADMIN_API_KEY\` yourself. Send every request with \`Authorization: Bearer <key>\`
   (the **Authorize** button above).
2. **A service key for your bot or app** (as admin): \`POST /v1/keys\` with \`{"name": "my bot", "role": "service"}\`.
   The key is shown once.
3. **Act for your end users.** With a service key, send \`X-User-Id: <your user's id>\` (e.g. a Discord user id;
   the user is created on first sight) and optionally \`X-Username\`, \`X-Channel-Id\`, \`X-Guild-Id\`. Without
   \`X-User-Id\` a service key acts as its own user, as Shapes.inc does.
4. **A provider key.** Each user brings their own: \`POST /v1/me/provider-keys\` with
   \`{"provider": "openrouter", "key": "sk-or-…"}\` (validated against the provider, stored encrypted). Where the
   plan allows, the platform's own key (\`OPENROUTER_API_KEY\`) is used instead; otherwise chat answers
   \`402 provider_key_required\`.
5. **A character**: \`POST /v1/characters\` (\`{"name": "Luna", "description": "…"}\`), or import a
   Character Card V2/V3 (JSON or PNG) with \`POST /v1/characters/import\`.
6. **Chat**: \`POST /v1/characters/luna/chat\` with \`{"content": "Hello!"}\` (\`"stream": true\` for Server-Sent Events).

## OpenAI drop-in

Any OpenAI client (and any bot written for Shapes.inc) works by changing the base URL and the key:

\`\`\`js
import OpenAI from 'openai';
const client = new OpenAI({ baseURL: 'http://localhost:8000/v1', apiKey: '<service key>', defaultHeaders: { 'X-User-Id': 'discord-123' } });
const answer = await client.chat.completions.create({ model: 'character/luna', messages: [{ role: 'user', content: 'Hello!' }] });
\`\`\`

The model is \`character/<slug>\` (\`shapesinc/<slug>\` also works and is echoed as asked); \`GET /v1/models\` lists them.
Streaming, tools, \`response_format\`, \`stop\` and \`seed\` pass through to the character's model.

## Errors

RFC 9457 \`application/problem+json\` (\`{type, title, status, detail, code}\`, plus \`field\` on 422), except on
\`/v1/chat/completions\` and \`/v1/models\`, which answer OpenAI's \`{"error": {message, type, code, param}}\`.
The full contract is \`docs/api.md\` in the repository.`;

/** One description per tag (a module adding a tag adds its line here). */
export const OPENAPI_TAGS = [
  { name: 'users', description: 'You (`GET /v1/me`, your data export, forgetting you) and, for service and admin keys, the end users they act for.' },
  { name: 'identity', description: 'Platform API keys (admin, service, user): created once, shown once, revocable.' },
  { name: 'provider keys', description: 'Bring your own key: each user\'s provider keys, validated against the provider and stored encrypted; only masked forms come back.' },
  { name: 'characters', description: 'Characters: personality, greeting, example dialogues, lorebook, model settings; Character Card V2/V3 import and export (JSON or PNG).' },
  { name: 'chat', description: 'Talk to a character (the Shapes.inc bot protocol), streamed or not. In-chat commands: !wack, !reset, !sleep, !info, !help.' },
  { name: 'openai', description: 'OpenAI-compatible chat completions and model list: base URL `<server>/v1`, model `character/<slug>`.' },
  { name: 'conversations', description: 'Conversations (one per character and place: a direct chat, or a shared server channel) and their messages.' },
  { name: 'memories', description: 'Long-term memories per character: core, per user and per server (group); hybrid search; consolidation.' },
  { name: 'operations', description: 'Liveness, readiness details (admin) and Prometheus metrics.' },
];

const HEADER_DESCRIPTIONS: Record<string, string> = {
  'x-user-id': 'The end user this request acts for (service and admin keys): your own id for them, e.g. a Discord user id. Created on first sight. Without it a service key acts as its own user.',
  'x-username': 'The end user\'s display name; kept current (send the new name when it changes).',
  'x-channel-id': 'The channel the message was written in (shared channels share one conversation).',
  'x-guild-id': 'The server (guild) of the channel; scopes group memories.',
};

export type ContextHeaderName = 'x-user-id' | 'x-username' | 'x-channel-id' | 'x-guild-id';

export function headersFor(level: ContextHeaders): ContextHeaderName[] {
  if (level === 'none') return [];
  return level === 'place' ? ['x-user-id', 'x-username', 'x-channel-id', 'x-guild-id'] : ['x-user-id', 'x-username'];
}

/** The context headers a route declares: its `config.contextHeaders`, else by its auth level. */
export function declaredContextHeaders(config: { auth?: string; contextHeaders?: ContextHeaders } | undefined): ContextHeaderName[] {
  const level: ContextHeaders = config?.contextHeaders ?? (config?.auth === 'public' || config?.auth === 'admin' ? 'none' : 'user');
  return headersFor(level);
}

/**
 * Context headers read by routes that do not declare them (so /docs does not show them), as
 * `METHOD /route header`: filled by `endUserContext` when a handler reads one. A route must
 * declare what it reads; test/foundation/api-reference.test.ts exercises the routes and expects none.
 */
export const undeclaredContextHeaderReads = new Set<string>();

type TransformInput = Parameters<typeof jsonSchemaTransform>[0];

/** jsonSchemaTransform (zod → JSON Schema), then the context headers this route reads. */
export function documentRoute(input: TransformInput): ReturnType<typeof jsonSchemaTransform> {
  const transformed = jsonSchemaTransform(input);
  const names = declaredContextHeaders(input.route.config);
  if (names.length === 0 || transformed.schema.hide) return transformed;
  const schema = transformed.schema as { headers?: { type?: string; properties?: Record<string, unknown>; required?: string[] } };
  const existing = schema.headers ?? { type: 'object', properties: {} };
  const properties: Record<string, unknown> = { ...existing.properties };
  for (const name of names) properties[name] ??= { type: 'string', description: HEADER_DESCRIPTIONS[name] };
  schema.headers = { ...existing, type: 'object', properties };
  return transformed;
}

export function openApiOptions(version: string) {
  return {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Anima API', version, description: QUICKSTART },
      servers: [{ url: '/', description: 'This server' }],
      tags: OPENAPI_TAGS,
      components: { securitySchemes: { bearer: { type: 'http' as const, scheme: 'bearer', description: 'A platform API key (admin, service or user) or an OIDC ID token.' } } },
      security: [{ bearer: [] }],
    },
    transform: documentRoute,
  };
}
