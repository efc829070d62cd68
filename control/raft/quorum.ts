// Majority arithmetic over the voter set (learners never count).
import type { NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/** The highest index acknowledged by a majority of voters; 0 if there are no voters. */
export function committedIndex(voters: readonly NodeId[], match: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return 0;
  const acked = voters.map(match).sort((a, b) => b - a);
  // with n voters, the (n/2+1)-th highest ack is on a majority
  return acked[Math.floor(n / 2)]!;
}

export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const q = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  if (voters.length === 0) return 'won';
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}

export function hasQuorum(voters: readonly NodeId[], acked: (id: NodeId) => boolean): boolean {
  let n = 0;
  for (const id of voters) if (acked(id)) n++;
  return n >= Math.floor(voters.length / 2) + 1;
}
