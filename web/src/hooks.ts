import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, type Character } from './api';

/** One GET with its error kept apart, reloadable; `path` null waits. */
export function useApi<T>(path: string | null): { data: T | null; error: unknown; reload: () => void } {
  const [state, setState] = useState<{ data: T | null; error: unknown }>({ data: null, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    api<T>('GET', path)
      .then((data) => live && setState({ data, error: null }))
      .catch((error: unknown) => live && setState({ data: null, error }));
    return () => {
      live = false;
    };
  }, [path, tick]);
  const reload = useCallback(() => setTick((value) => value + 1), []);
  return { ...state, reload };
}

/** The characters the signed-in user can see (for pickers). */
export function useCharacters(): { characters: Character[] | null; error: unknown } {
  const { data, error } = useApi<{ data: Character[] }>('/v1/characters?limit=200');
  return { characters: data?.data ?? null, error };
}

/**
 * An admin form that edits a record or creates one: `edit(record)` opens it filled from the record
 * (`null`: a new one), `update` changes fields, `submit` saves through `save` and closes it, keeping the
 * API's refusal in `error` (the form stays open to correct it).
 */
export function useRecordEditor<R, F>(options: { formOf: (record: R | null) => F; save: (record: R | null, form: F) => Promise<void> }) {
  const [editing, setEditing] = useState<{ record: R | null; form: F } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const edit = (record: R | null) => {
    setError(null);
    setEditing({ record, form: options.formOf(record) });
  };
  const update = (change: Partial<F>) => setEditing((current) => (current ? { ...current, form: { ...current.form, ...change } } : current));
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!editing) return;
    try {
      await options.save(editing.record, editing.form);
      setEditing(null);
      setError(null);
    } catch (failure) {
      setError(failure);
    }
  };
  return { editing, edit, update, submit, cancel: () => setEditing(null), error };
}
