import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, streamChat, type Character } from '../api';
import { Problem } from '../ui';

interface Turn {
  role: 'user' | 'assistant';
  content: string;
}

function characterFromHash(): string {
  return new URLSearchParams(window.location.hash.split('?')[1] ?? '').get('character') ?? '';
}

export function ChatPage() {
  const [characters, setCharacters] = useState<Character[] | null>(null);
  const [slug, setSlug] = useState(characterFromHash);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [draft, setDraft] = useState('');
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const log = useRef<HTMLOListElement>(null);

  useEffect(() => {
    api<{ data: Character[] }>('GET', '/v1/characters?limit=200')
      .then((page) => {
        setCharacters(page.data);
        setSlug((current) => current || page.data[0]?.slug || '');
      })
      .catch(setError);
  }, []);

  useEffect(() => {
    log.current?.lastElementChild?.scrollIntoView({ block: 'end' });
  }, [turns]);

  async function send(event: FormEvent) {
    event.preventDefault();
    const text = draft.trim();
    if (!text || !slug) return;
    const history: Turn[] = [...turns, { role: 'user', content: text }];
    setTurns([...history, { role: 'assistant', content: '' }]);
    setDraft('');
    setStreaming(true);
    setError(null);
    try {
      await streamChat(`character/${slug}`, history, (token) =>
        setTurns((current) => {
          const last = current[current.length - 1]!;
          return [...current.slice(0, -1), { ...last, content: last.content + token }];
        }),
      );
    } catch (failure) {
      setError(failure);
      setTurns(history);
    } finally {
      setStreaming(false);
    }
  }

  return (
    <section aria-labelledby="chat-title" className="chat">
      <h2 id="chat-title">Chat</h2>
      {characters && characters.length === 0 && <p className="muted">No characters yet: import one on the Characters page.</p>}
      {characters && characters.length > 0 && (
        <div className="field inline">
          <label htmlFor="chat-character">Character</label>
          <select
            id="chat-character"
            value={slug}
            onChange={(event) => {
              setSlug(event.target.value);
              setTurns([]);
            }}
          >
            {characters.map((character) => (
              <option key={character.id} value={character.slug}>
                {character.name}
              </option>
            ))}
          </select>
        </div>
      )}
      <ol className="log" ref={log} aria-live="polite" aria-label="Conversation">
        {turns.map((turn, index) => (
          <li key={index} className={`bubble ${turn.role}`}>
            {turn.content || (streaming && index === turns.length - 1 ? '…' : '')}
          </li>
        ))}
      </ol>
      {error !== null && <Problem error={error} />}
      <form className="composer" onSubmit={(event) => void send(event)}>
        <label htmlFor="chat-input" className="sr-only">
          Message
        </label>
        <textarea
          id="chat-input"
          rows={2}
          value={draft}
          placeholder="Say something… (Enter sends)"
          onChange={(event) => setDraft(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Enter' && !event.shiftKey) {
              event.preventDefault();
              event.currentTarget.form?.requestSubmit();
            }
          }}
        />
        <button type="submit" disabled={streaming || !slug || draft.trim() === ''}>
          {streaming ? 'Answering…' : 'Send'}
        </button>
      </form>
    </section>
  );
}
