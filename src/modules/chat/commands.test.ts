import { describe, expect, it } from 'vitest';
import { parseCommand, parseImagine } from './commands.js';

describe('parseCommand', () => {
  it('recognises the five commands alone in a message, in any case', () => {
    expect(parseCommand('!wack')).toBe('wack');
    expect(parseCommand('  !RESET ')).toBe('reset');
    expect(parseCommand('!sleep')).toBe('sleep');
    expect(parseCommand('!Info')).toBe('info');
    expect(parseCommand('!help')).toBe('help');
  });

  it('leaves ordinary messages and unknown commands to the model', () => {
    expect(parseCommand('!wack please')).toBeUndefined();
    expect(parseCommand('please !wack')).toBeUndefined();
    expect(parseCommand('!dance')).toBeUndefined();
    expect(parseCommand('wack')).toBeUndefined();
  });
});

describe('parseImagine', () => {
  it('takes the prompt after !imagine, in any case, across lines', () => {
    expect(parseImagine('!imagine a red fox')).toBe('a red fox');
    expect(parseImagine('  !IMAGINE  a fox\nin snow ')).toBe('a fox\nin snow');
  });

  it('is not a prompt without one, or with the command elsewhere', () => {
    expect(parseImagine('!imagine')).toBeUndefined();
    expect(parseImagine('please !imagine a fox')).toBeUndefined();
    expect(parseImagine('!imaginea fox')).toBeUndefined();
    expect(parseCommand('!imagine')).toBe('imagine');
  });
});
