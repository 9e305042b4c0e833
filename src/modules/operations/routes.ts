import { z } from 'zod';
import type { AppInstance } from '../../app-types.js';
import { PROVIDERS } from '../../config.js';
import type { Infrastructure } from '../../container.js';
import { problemResponses } from '../../infra/http/schemas.js';
import type { Metrics } from './metrics.js';

const componentSchema = z.object({ status: z.enum(['ok', 'down', 'not_configured']), kind: z.string(), latency_ms: z.number().optional(), error: z.string().optional() });

async function check(kind: string, probe: () => Promise<unknown>): Promise<z.infer<typeof componentSchema>> {
  const started = performance.now();
  try {
    await Promise.race([probe(), new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 2 s')), 2000).unref())]);
    return { status: 'ok', kind, latency_ms: Math.round((performance.now() - started) * 10) / 10 };
  } catch (error) {
    return { status: 'down', kind, error: error instanceof Error ? error.message : 'unknown error' };
  }
}

export function registerOperationsRoutes(app: AppInstance, deps: { infrastructure: Infrastructure; metrics: Metrics; version: string }): void {
  const { infrastructure, metrics } = deps;
  const startedAt = Date.now();

  app.get(
    '/health',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process serves requests',
        security: [],
        response: { 200: z.object({ status: z.literal('ok'), version: z.string(), uptime_seconds: z.number() }) },
      },
    },
    async () => ({ status: 'ok' as const, version: deps.version, uptime_seconds: Math.round((Date.now() - startedAt) / 1000) }),
  );

  app.get(
    '/health/detailed',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['operations'],
        summary: 'Readiness of each dependency and which providers are configured (admin)',
        response: {
          200: z.object({
            status: z.enum(['ok', 'degraded']),
            version: z.string(),
            database: componentSchema,
            cache: componentSchema,
            queue: componentSchema.extend({ waiting: z.number().optional(), active: z.number().optional(), failed: z.number().optional() }),
            providers: z.record(z.string(), z.object({ configured: z.boolean(), base_url: z.string() })),
          }),
          ...problemResponses,
        },
      },
    },
    async () => {
      const [database, cache, queue] = await Promise.all([
        check(infrastructure.database.kind, () => infrastructure.database.ping()),
        check(infrastructure.keyValue.kind, () => infrastructure.keyValue.ping()),
        check(infrastructure.queue.kind, () => infrastructure.queue.ping()),
      ]);
      const queueStats = queue.status === 'ok' ? await infrastructure.queue.stats().catch(() => undefined) : undefined;
      const providers: Record<string, { configured: boolean; base_url: string }> = {};
      for (const provider of PROVIDERS) {
        const settings = infrastructure.config.providers[provider];
        providers[provider] = { configured: Boolean(settings.platformKey), base_url: settings.baseUrl };
      }
      const healthy = [database, cache, queue].every((component) => component.status === 'ok');
      return {
        status: healthy ? ('ok' as const) : ('degraded' as const),
        version: deps.version,
        database,
        cache,
        queue: { ...queue, waiting: queueStats?.waiting, active: queueStats?.active, failed: queueStats?.failed },
        providers,
      };
    },
  );

  app.get(
    '/metrics',
    { config: { auth: 'public' }, schema: { tags: ['operations'], summary: 'Prometheus metrics', security: [] } },
    async (_request, reply) => {
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );
}
