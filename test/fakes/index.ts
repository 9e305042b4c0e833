/** Loopback HTTP fakes of the upstream providers, for tests and benchmarks. See README.md. */
export * from './fake-server.js';
export * from './media.js';
export * from './vectors.js';
export * from './openrouter.js';
export * from './openai-images.js';
export * from './gemini.js';
export * from './elevenlabs.js';
export * from './minimax.js';
export * from './fal.js';
export * from './stability.js';
export * from './jwks.js';
export * from './s3.js';
export * from './kie.js';
