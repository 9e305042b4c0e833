import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fastifyCors from '@fastify/cors';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import helmet from 'helmet';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { AppInstance } from './app-types.js';
import type { Container } from './container.js';
import { projectFile } from './infra/project-files.js';
import { clientErrorHandler, frameworkErrors, registerErrorHandling } from './infra/http/error-handler.js';
import { registerInputGuard } from './infra/http/input-guard.js';
import { openApiOptions } from './infra/http/openapi.js';
import { registerAuthentication } from './modules/identity/auth.js';
import { createMetrics, registerRequestMetrics } from './modules/operations/metrics.js';
import { registerOperationsRoutes } from './modules/operations/routes.js';
import { registerWebRoutes } from './modules/web/routes.js';

export const VERSION = (JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string }).version;

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * One access line per request, written when it ends (method, path, status, time), instead of
 * Fastify's two (one more when it arrives): half the log writes of every chat turn. Fastify's other
 * lines (errors, streams cut short, unknown routes) stay as they are.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const line = { req: { method: request.method, url: request.url, remoteAddress: request.ip }, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

/** Builds the Fastify instance: external plugins, then the shell's own, then each module's routes. */
export async function buildApp(container: Container): Promise<AppInstance> {
  const { config, logger } = container;
  // pino's Logger is a FastifyBaseLogger; typing it so keeps the instance type the modules expect.
  const fastifyLogger: FastifyBaseLogger = logger;
  const app = Fastify({
    loggerInstance: fastifyLogger,
    logController: new OneLinePerRequest(),
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    // Honour a caller's request id when it is sane; otherwise make one.
    genReqId: (request) => {
      const incoming = request.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: false } },
    // Router and parser errors answer problem+json (or OpenAI's envelope) like every other error.
    frameworkErrors,
    clientErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  registerInputGuard(app);

  // Security headers from helmet's middleware, built once: @fastify/helmet built it again for every
  // request (≈ 0.1 ms of CPU each, a chat turn's 3 %; issue 14). The API answers JSON; the HTML pages
  // set their own CSP: /docs from swagger-ui (staticCSP), / in src/modules/web.
  const securityHeaders = helmet({ contentSecurityPolicy: false, crossOriginResourcePolicy: { policy: 'same-site' } });
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    securityHeaders(request.raw, reply.raw, () => done());
  });
  await app.register(fastifyCors, {
    origin: config.corsOrigins.length > 0 ? config.corsOrigins : false,
    credentials: true,
    exposedHeaders: ['x-request-id', 'retry-after'],
  });

  await app.register(fastifySwagger, openApiOptions(VERSION));
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { deepLinking: true } });
  app.get('/openapi.json', { config: { auth: 'public' }, schema: { hide: true } }, async () => app.swagger());

  const metrics = createMetrics();
  registerRequestMetrics(app, metrics);
  registerAuthentication(app, container.identity.service);
  registerOperationsRoutes(app, { infrastructure: container, metrics, version: VERSION });
  for (const module of container.modules) await module.registerRoutes?.(app);
  // The dashboard (web/dist) at `/`, with its own strict Content-Security-Policy.
  registerWebRoutes(app, { version: VERSION });

  return app;
}
