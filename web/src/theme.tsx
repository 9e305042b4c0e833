import { useEffect, useState } from 'react';

type Theme = 'system' | 'light' | 'dark';
const THEME_STORAGE = 'anima.theme';
const NEXT: Record<Theme, Theme> = { system: 'light', light: 'dark', dark: 'system' };
const LABEL: Record<Theme, string> = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' };

function storedTheme(): Theme {
  const value = localStorage.getItem(THEME_STORAGE);
  return value === 'light' || value === 'dark' ? value : 'system';
}

/** Applies the saved theme before the first paint (called from main.tsx). */
export function applyStoredTheme(): void {
  const theme = storedTheme();
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

/** System → light → dark; remembered on this device (a preference, not a secret). */
export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(storedTheme);
  useEffect(() => {
    if (theme === 'system') localStorage.removeItem(THEME_STORAGE);
    else localStorage.setItem(THEME_STORAGE, theme);
    applyStoredTheme();
  }, [theme]);
  return (
    <button type="button" className="ghost icon" onClick={() => setTheme(NEXT[theme])} aria-label={`${LABEL[theme]} (change)`} title={LABEL[theme]}>
      {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◑'}
    </button>
  );
}
