#!/usr/bin/env node
// The `veer` command. Node 24 runs the TypeScript sources directly (type stripping).
import { main } from '../src/cli/index.ts';

await main(process.argv);
// Exit explicitly: a finished command should not wait on idle handles (watchers, keep-alive pools).
process.exit(process.exitCode ?? 0);
