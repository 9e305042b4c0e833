import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'drizzle/**', 'web/dist/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
    },
  },
  {
    // Every provider call goes through the metered gateway (src/modules/gateway): outside it, no
    // module may import a provider adapter or an adapter factory as a value (types, errors, pure
    // helpers and constants are fine). Exempt: the providers themselves; registry factories that
    // register a modality's adapters into the gateway's registry (gateway/default-registry.ts and
    // images/index.ts, voice/index.ts); and key checks (providers/key-checks), since validating a key when a user
    // adds or re-checks it (and `cli check`) is not metered work: it spends nothing, answers no user's request,
    // and must work before any plan or balance exists.
    files: ['src/**/*.ts'],
    ignores: ['src/modules/gateway/**', 'src/providers/**', 'src/modules/images/index.ts', 'src/modules/voice/index.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)providers/(?!key-checks/)',
              importNamePattern: '^(create\\w*(Provider|Providers|Embedder)|[A-Z]\\w*(Provider|Embedder))$',
              allowTypeImports: true,
              message: 'Provider adapters are reached only through the gateway (container.gateway / a Lease); import their types only.',
            },
          ],
        },
      ],
    },
  },
  {
    // One `sql` tag for every statement: src/infra/db/sql.ts builds the same SQL as Drizzle's with
    // less work a call (a chat turn builds a few hundred template chunks).
    files: ['src/**/*.ts'],
    ignores: ['src/infra/db/sql.ts', 'src/infra/db/sql.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'drizzle-orm', importNames: ['sql'], message: "Use `sql` from src/infra/db/sql.ts (Drizzle's tag, built with less work a call)." }] },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', URL: 'readonly', console: 'readonly' },
    },
  },
);
