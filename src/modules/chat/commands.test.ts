import { describe, expect, it } from 'vitest';
import { parseCommand } from './commands.js';

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
