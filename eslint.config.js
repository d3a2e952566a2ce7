// Lint: typescript-eslint's recommended rules, plus the rooms of src/
// (STYLE.md): lint/rooms.js holds the one table of allowed imports, and its
// rule checks every import under src/ against it.
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { roomsPlugin } from './lint/rooms.js';

const SRC = fileURLToPath(new URL('./src', import.meta.url));

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'var/', 'bench/results/', 'coverage/', '.tap/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', performance: 'readonly', URL: 'readonly', URLSearchParams: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  { files: ['src/**/*.ts'], plugins: { rooms: roomsPlugin(SRC) }, rules: { 'rooms/imports': 'error' } },
  // The dashboard's page code runs in the browser (src/admin/dashboard.ts serves it as is).
  {
    files: ['src/admin/dashboard/**/*.js'],
    languageOptions: { sourceType: 'module', globals: { window: 'readonly', document: 'readonly', fetch: 'readonly', sessionStorage: 'readonly', Node: 'readonly', CustomEvent: 'readonly', ResizeObserver: 'readonly' } },
  },
);
