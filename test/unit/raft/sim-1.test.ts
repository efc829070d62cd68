import t from 'tap';
import { runSeedRange } from './seeds.js';

// Seeds 1-1000 (sim-2 runs 1001-2000). RAFT_SEED=n runs only seed n.
runSeedRange(t, 1, 1000);
