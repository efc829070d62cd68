import t from 'tap';
import { runSeedRange } from './seeds.js';

// Seeds 1001-2000 (sim-1 runs 1-1000). RAFT_SEED=n runs only seed n.
runSeedRange(t, 1001, 1000);
