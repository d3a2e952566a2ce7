// The command-line flags every load benchmark takes (bench/run.ts, bench/tls.ts).

/** parseArgs options: --quick, --seconds N, --reps N, --connections N, --with-native, --no-native. */
export const LOAD_FLAGS = {
  quick: { type: 'boolean', default: false },
  seconds: { type: 'string' },
  reps: { type: 'string' },
  connections: { type: 'string', default: '50' },
  'with-native': { type: 'boolean', default: false },
  'no-native': { type: 'boolean', default: false },
} as const;
