import { useCallback, useEffect, useState } from 'react';
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
