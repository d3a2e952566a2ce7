// Lint: typescript-eslint's recommended rules, plus the import direction
// between rooms (STYLE.md): each room imports others only through their
// index.ts, and only the rooms it may depend on.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ROOMS = ['config', 'table', 'router', 'forwarder', 'metrics', 'state', 'rollout', 'admin', 'dataplane', 'log', 'cluster', 'cli'];

/** Which rooms each room may import (besides errors.ts and itself). */
const ALLOWED = {
  config: [],
  table: ['config'],
  router: ['table'],
  forwarder: ['table', 'config'],
  metrics: ['table', 'forwarder', 'config'],
  state: ['config', 'table', 'log', 'metrics'],
  rollout: ['state', 'metrics', 'table', 'config', 'log'],
  admin: ['state', 'metrics', 'router', 'table', 'config', 'rollout', 'log'],
  dataplane: ['router', 'forwarder', 'table', 'log', 'metrics'],
  cluster: ['dataplane', 'forwarder', 'table', 'config', 'metrics', 'state', 'log'],
  log: [],
  cli: ROOMS.filter((r) => r !== 'cli'),
};

const roomRules = ROOMS.map((room) => ({
  files: [`src/${room}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            regex: `^\\.\\./(?!(${[...ALLOWED[room], 'errors\\.ts', ...(room === 'cli' ? ['main\\.ts'] : [])].join('|')})(/|$))`,
            message: `src/${room} may import only: ${ALLOWED[room].join(', ') || '(no other room)'} (see STYLE.md).`,
          },
          {
            regex: '^\\.\\./[a-z-]+/(?!index\\.ts$).+',
            message: 'import another room only through its index.ts.',
          },
          { regex: '^\\.\\./\\.\\./', message: 'rooms import siblings only.' },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/', 'var/', 'bench/results/', 'coverage/', '.tap/'] },
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
  ...roomRules,
);
