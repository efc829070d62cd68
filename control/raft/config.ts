// Configuration of one Raft node. Time is measured in ticks: the application calls tick() every
// `tickMs` milliseconds, and the millisecond timeouts below are converted to tick counts.
import type { Storage } from './storage.js';
import type { NodeId } from './types.js';
import { RaftError } from './types.js';

export interface Config {
  id: NodeId;
  storage: Storage;
  /** Uniform random numbers in [0, 1): the only source of randomness (seed it in tests). */
  random: () => number;
  /** Length of one tick in ms (default 100). */
  tickMs?: number;
  /** Leader heartbeat interval in ms (default 100). */
  heartbeatMs?: number;
  /** Base election timeout in ms (default 1000); the actual one is random in [base, 2*base). */
  electionMs?: number;
  /** Ask for pre-votes before bumping the term, so a partitioned node cannot disrupt (default true). */
  preVote?: boolean;
  /** Leader steps down without a quorum of recent contact; followers keep a leader lease (default true). */
  checkQuorum?: boolean;
  /** Soft limit of entry bytes per append message (default 1 MiB). */
  maxSizePerMsg?: number;
  /** Appends in flight per follower when replicating (default 256). */
  maxInflight?: number;
  /** Limit of entry bytes handed to the application per Ready (default unlimited). */
  maxApplyBytes?: number;
  /** Index already applied by the state machine (on restart); default: the snapshot index. */
  applied?: number;
}

export interface ResolvedConfig {
  id: NodeId;
  storage: Storage;
  random: () => number;
  heartbeatTick: number;
  electionTick: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxSizePerMsg: number;
  maxInflight: number;
  maxApplyBytes: number;
  applied: number;
}

export function resolveConfig(c: Config): ResolvedConfig {
  if (c.id === '') throw new RaftError('node id must not be empty');
  const tickMs = c.tickMs ?? 100;
  const heartbeatMs = c.heartbeatMs ?? 100;
  const electionMs = c.electionMs ?? 1000;
  if (!(tickMs > 0) || !(heartbeatMs > 0) || !(electionMs > 0)) throw new RaftError('timeouts must be positive');
  const heartbeatTick = Math.max(1, Math.round(heartbeatMs / tickMs));
  const electionTick = Math.round(electionMs / tickMs);
  if (electionTick <= heartbeatTick) throw new RaftError(`election timeout (${electionTick} ticks) must exceed heartbeat (${heartbeatTick} ticks)`);
  return {
    id: c.id,
    storage: c.storage,
    random: c.random,
    heartbeatTick,
    electionTick,
    preVote: c.preVote ?? true,
    checkQuorum: c.checkQuorum ?? true,
    maxSizePerMsg: c.maxSizePerMsg ?? 1 << 20,
    maxInflight: c.maxInflight ?? 256,
    maxApplyBytes: c.maxApplyBytes ?? Number.MAX_SAFE_INTEGER,
    applied: c.applied ?? 0,
  };
}
