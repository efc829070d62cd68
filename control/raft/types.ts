// Wire and storage types of the Raft core. Plain data only, so a transport or the WAL can encode them
// without knowing the state machine.

export type NodeId = string;
/** No node (no leader known, no vote cast). */
export const NONE: NodeId = '';

export type EntryType = 'normal' | 'conf';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** Application payload; for 'conf' entries an encoded ConfChange (see encodeConfChange). */
  readonly data: Uint8Array;
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'remove';

/** One-at-a-time membership change: one node joins, is promoted/demoted, or leaves. */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly node: NodeId;
  /** Opaque application context (e.g. the new manager's address). */
  readonly context?: string;
}

export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** What must be on stable storage before any message of the same Ready is sent. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export type MessageType =
  // local-only: never sent on the wire
  | 'hup' // start an election (tick timeout or campaign())
  | 'beat' // leader: send heartbeats
  | 'prop' // proposal (may be forwarded to the leader)
  | 'snapStatus' // application reports the result of sending a snapshot
  | 'unreachable' // application reports that a peer could not be reached
  // wire
  | 'app'
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'snap'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'transferLeader'
  | 'timeoutNow'
  | 'readIndex'
  | 'readIndexResp';

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  /** 0 for local messages: they are never dropped by the term checks. */
  term: number;
  /** app: term of the entry at `index`; appResp reject: term of the hint entry; vote: last log term. */
  logTerm: number;
  /** app: index preceding `entries`; appResp: last matched index (or rejected index); vote: last index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** appResp reject: follower's guess where the logs may agree (fast back-off). */
  rejectHint: number;
  snapshot?: Snapshot;
  /** Heartbeats and read requests: the ReadIndex request being confirmed; votes: 'transfer'. */
  context: string;
}

export function msg(m: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    from: NONE,
    to: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: '',
    ...m,
  };
}

export type StateType = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly lead: NodeId;
  readonly state: StateType;
}

/** A linearizable read may be served once the local applied index reaches `index`. */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

/** Vote context marking a campaign started by leadership transfer: it overrides the leader lease. */
export const CAMPAIGN_TRANSFER = 'transfer';

export function isLocalMsg(t: MessageType): boolean {
  return t === 'hup' || t === 'beat' || t === 'snapStatus' || t === 'unreachable';
}

export function isResponseMsg(t: MessageType): boolean {
  return t === 'appResp' || t === 'voteResp' || t === 'preVoteResp' || t === 'heartbeatResp' || t === 'readIndexResp';
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return enc.encode(JSON.stringify(cc));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const v: unknown = JSON.parse(dec.decode(data));
  if (typeof v !== 'object' || v === null) throw new Error('bad conf change');
  const o = v as Record<string, unknown>;
  if ((o.type !== 'addVoter' && o.type !== 'addLearner' && o.type !== 'remove') || typeof o.node !== 'string') {
    throw new Error('bad conf change');
  }
  return typeof o.context === 'string' ? { type: o.type, node: o.node, context: o.context } : { type: o.type, node: o.node };
}

export function isEmptyHardState(h: HardState): boolean {
  return h.term === 0 && h.vote === NONE && h.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };
export const EMPTY_CONF: ConfState = { voters: [], learners: [] };

export class RaftError extends Error {}
/** Entries before the first available index were compacted into a snapshot. */
export class CompactedError extends RaftError {}
