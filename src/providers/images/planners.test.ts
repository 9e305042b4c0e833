import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../infra/http/errors.js';
import { planImage, providerOfModel, ratioOf, sniffImage, type ImageRequest } from './index.js';

const request = (overrides: Partial<ImageRequest> = {}): ImageRequest => ({
  prompt: 'a fox',
  style: 'quality',
  model: undefined,
  count: 1,
  size: undefined,
  aspectRatio: undefined,
  negativePrompt: undefined,
  seed: undefined,
  steps: undefined,
  guidance: undefined,
  outputFormat: undefined,
  quality: undefined,
  openaiStyle: undefined,
  ...overrides,
});

const fieldOf = (work: () => unknown): string | undefined => {
  try {
    work();
  } catch (error) {
    if (error instanceof ValidationError) return error.field;
    throw error;
  }
  return undefined;
};

describe('one request shape, mapped per provider', () => {
  it('fal: styles pick schnell / dev / pro; size becomes image_size; steps and guidance where the model takes them', () => {
    expect(planImage('fal', request({ style: 'fast' })).model).toBe('fal-ai/flux/schnell');
    expect(planImage('fal', request({ style: 'pro' })).model).toBe('fal-ai/flux-pro/v1.1');
    const dev = planImage('fal', request({ size: '1024x768', steps: 30, guidance: 4, seed: 9, outputFormat: 'png' }));
    expect(dev.body).toMatchObject({ image_size: { width: 1024, height: 768 }, num_inference_steps: 30, guidance_scale: 4, seed: 9, output_format: 'png', enable_safety_checker: true });
    expect(planImage('fal', request({ aspectRatio: '16:9' })).body.image_size).toBe('landscape_16_9');
    const schnell = planImage('fal', request({ style: 'fast', guidance: 3, negativePrompt: 'rain' }));
    expect(schnell.body.guidance_scale).toBeUndefined();
    expect(schnell.warnings.join(' ')).toMatch(/guidance.*schnell|negative_prompt/);
    expect(fieldOf(() => planImage('fal', request({ style: 'fast', steps: 20 })))).toBe('steps');
    expect(fieldOf(() => planImage('fal', request({ count: 5 })))).toBe('n');
    expect(fieldOf(() => planImage('fal', request({ aspectRatio: '21:9' })))).toBe('aspect_ratio');
  });

  it('openai: gpt-image-1 by default (base64), dall-e-3 asked for URLs; sizes per model; seed is a warning', () => {
    const gpt = planImage('openai', request({ style: 'pro', seed: 1 }));
    expect(gpt.body).toEqual({ model: 'gpt-image-1', prompt: 'a fox', n: 1, size: '1024x1024', quality: 'high' });
    expect(gpt.warnings.join(' ')).toContain('seed');
    expect(planImage('openai', request({ model: 'dall-e-3', aspectRatio: '7:4' })).body).toMatchObject({ size: '1792x1024', response_format: 'url', quality: 'standard' });
    expect(fieldOf(() => planImage('openai', request({ model: 'dall-e-3', outputFormat: 'jpeg' })))).toBe('output_format');
    expect(fieldOf(() => planImage('openai', request({ openaiStyle: 'vivid' })))).toBe('style');
    expect(fieldOf(() => planImage('openai', request({ model: 'gpt-image-1', quality: 'hd' })))).toBe('quality');
  });

  it('stability: aspect ratios (a near size counts, with a warning), negative prompt and seed as form fields', () => {
    const plan = planImage('stability', request({ size: '1344x768', negativePrompt: 'fog', seed: 5 }));
    expect(plan.body).toMatchObject({ aspect_ratio: '16:9', negative_prompt: 'fog', seed: 5, output_format: 'png' });
    expect(plan.warnings.join(' ')).toContain('16:9');
    expect(planImage('stability', request({ style: 'pro' })).model).toBe('ultra');
    expect(fieldOf(() => planImage('stability', request({ size: '1000x300' })))).toBe('size');
    expect(fieldOf(() => planImage('stability', request({ model: 'sdxl' })))).toBe('model');
  });

  it('kie: Flux Kontext pro or max, its aspect ratios, jpeg or png', () => {
    expect(planImage('kie', request({ style: 'pro', aspectRatio: '3:4' })).body).toEqual({ prompt: 'a fox', model: 'flux-kontext-max', aspectRatio: '3:4', outputFormat: 'png' });
    expect(fieldOf(() => planImage('kie', request({ outputFormat: 'webp' })))).toBe('output_format');
    expect(fieldOf(() => planImage('kie', request({ aspectRatio: '2:3' })))).toBe('aspect_ratio');
    expect(planImage('kie', request({ steps: 10 })).warnings.join(' ')).toContain('steps');
  });

  it('names the provider of a model, reduces ratios and sniffs real images only', () => {
    expect(providerOfModel('dall-e-3')).toBe('openai');
    expect(providerOfModel('flux-kontext-max')).toBe('kie');
    expect(providerOfModel('ultra')).toBe('stability');
    expect(providerOfModel('fal-ai/flux/dev')).toBe('fal');
    expect(providerOfModel('midjourney')).toBeUndefined();
    expect(ratioOf(1920, 1080)).toBe('16:9');
    expect(sniffImage(Buffer.from('<html></html>'))).toBeUndefined();
  });
});
