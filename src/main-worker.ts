// Entry point of a node:cluster worker (forked by the primary, see src/cluster):
// serves the data plane on the tables the primary sends. No logic here.

import { runWorker } from './cluster/index.ts';

runWorker();
