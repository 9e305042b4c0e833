import { useCallback, useEffect, useRef, useState, type DragEvent } from 'react';
import { api, apiBlob, download, type Character } from '../api';
import { CharacterEditor } from './CharacterEditor';
import { Problem } from '../ui';

export function CharactersPage() {
  const [characters, setCharacters] = useState<Character[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [importError, setImportError] = useState<unknown>(null);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const [editing, setEditing] = useState<string | null | undefined>(undefined);

  const load = useCallback(async () => {
    try {
      setCharacters((await api<{ data: Character[] }>('GET', '/v1/characters?limit=200')).data);
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  }, []);
  useEffect(() => void load(), [load]);

  async function importFile(file: File) {
    setMessage(null);
    setImportError(null);
    try {
      const isPng = file.type === 'image/png' || file.name.toLowerCase().endsWith('.png');
      const created = isPng
        ? await api<Character>('POST', '/v1/characters/import', await file.arrayBuffer(), 'image/png')
        : await api<Character>('POST', '/v1/characters/import', JSON.parse(await file.text()) as unknown);
      setMessage(`Imported ${created.name}.`);
      await load();
    } catch (failure) {
      setImportError(failure instanceof SyntaxError ? new Error(`${file.name} is not valid JSON`) : failure);
    }
  }

  function onDrop(event: DragEvent) {
    event.preventDefault();
    setDragging(false);
    const file = event.dataTransfer.files[0];
    if (file) void importFile(file);
  }

  async function exportCard(character: Character, format: 'png' | 'ccv3') {
    try {
      const blob = await apiBlob('GET', `/v1/characters/${encodeURIComponent(character.slug)}/export?format=${format}`);
      download(`${character.slug}.${format === 'png' ? 'png' : 'json'}`, blob);
    } catch (failure) {
      setError(failure);
    }
  }

  if (editing !== undefined)
    return (
      <section aria-labelledby="characters-title">
        <h2 id="characters-title">Characters</h2>
        <CharacterEditor
          slug={editing}
          onDone={(saved) => {
            setEditing(undefined);
            setMessage(saved ? `Saved ${saved}.` : null);
            void load();
          }}
        />
      </section>
    );

  return (
    <section aria-labelledby="characters-title">
      <div className="page-head">
        <h2 id="characters-title">Characters</h2>
        <button type="button" onClick={() => setEditing(null)}>
          New character
        </button>
      </div>
      <div
        className={`dropzone${dragging ? ' dragging' : ''}`}
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p>Drop a Character Card (PNG or JSON, V2/V3) here, or</p>
        <label htmlFor="card-file" className="button">
          Choose a card…
        </label>
        <input
          id="card-file"
          ref={input}
          className="sr-only"
          type="file"
          accept="image/png,application/json,.json,.png"
          onChange={(event) => {
            const file = event.target.files?.[0];
            if (file) void importFile(file);
            if (input.current) input.current.value = '';
          }}
        />
      </div>
      {message && (
        <p className="notice ok" role="status">
          {message}
        </p>
      )}
      {importError !== null && <Problem error={importError} />}
      {error !== null && <Problem error={error} />}
      {characters && characters.length === 0 && <p className="muted">No characters yet: import a card to begin.</p>}
      {characters && characters.length > 0 && (
        <ul className="grid" aria-label="Your characters">
          {characters.map((character) => (
            <li key={character.id} className="card character">
              <span className="avatar" aria-hidden="true">
                {character.name.slice(0, 1).toUpperCase()}
              </span>
              <div>
                <strong>{character.name}</strong>
                <div className="muted small">
                  {character.slug}
                  {character.visibility ? ` · ${character.visibility}` : ''}
                </div>
              </div>
              <div className="actions small">
                <a href={`#/chat?character=${encodeURIComponent(character.slug)}`} aria-label={`Chat with ${character.name}`}>
                  Chat
                </a>
                <button type="button" className="link" onClick={() => setEditing(character.slug)} aria-label={`Edit ${character.name}`}>
                  Edit
                </button>
                <button type="button" className="link" onClick={() => void exportCard(character, 'png')} aria-label={`Export ${character.name} as a PNG card`}>
                  PNG
                </button>
                <button type="button" className="link" onClick={() => void exportCard(character, 'ccv3')} aria-label={`Export ${character.name} as JSON`}>
                  JSON
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
