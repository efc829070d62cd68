// Every message kind that crosses the wire. The state machine speaks these objects; codec.ts turns
// them into bytes and back. Numbers: seq and incarnation are u32, Lamport times are u48.

export interface Addr {
  host: string;
  port: number;
}

export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';

export interface Ping {
  t: 'ping';
  seq: number;
  /** Name of the node we mean to probe: a ping that reaches someone else (address reuse) is ignored. */
  target: string;
  source: string;
  sourceAddr: Addr;
}

/** SWIM ping-req: "probe `target` for me and forward its ack". */
export interface PingReq {
  t: 'ping-req';
  seq: number;
  target: string;
  targetAddr: Addr;
  /** Lifeguard: ask the relay to send a nack if the target stays silent, so we learn the relay works. */
  nack: boolean;
  source: string;
  sourceAddr: Addr;
}

export interface Ack {
  t: 'ack';
  seq: number;
}

export interface Nack {
  t: 'nack';
  seq: number;
}

export interface Alive {
  t: 'alive';
  node: string;
  inc: number;
  addr: Addr;
  meta: Uint8Array;
}

export interface Suspect {
  t: 'suspect';
  node: string;
  inc: number;
  from: string;
}

/** Dead with from === node means a graceful leave. */
export interface Dead {
  t: 'dead';
  node: string;
  inc: number;
  from: string;
}

/** Node joined (leave=false) or left a network; ordered per node by its network Lamport clock. */
export interface NetEvent {
  t: 'net';
  node: string;
  network: string;
  ltime: number;
  leave: boolean;
}

export interface TableEntry {
  network: string;
  table: string;
  key: string;
  value: Uint8Array;
  owner: string;
  version: number;
  deleted: boolean;
}

export interface TableEvent extends TableEntry {
  t: 'table';
}

export interface MemberRecord {
  name: string;
  addr: Addr;
  inc: number;
  status: MemberStatus;
  meta: Uint8Array;
}

/** Full-state exchange (TCP). `reply` marks the answer; `join` asks the peer to answer even if busy. */
export interface PushPull {
  t: 'push-pull';
  join: boolean;
  reply: boolean;
  source: string;
  sourceAddr: Addr;
  members: MemberRecord[];
  nets: NetEvent[];
  entries: TableEntry[];
}

export type Message = Ping | PingReq | Ack | Nack | Alive | Suspect | Dead | NetEvent | TableEvent | PushPull;
export type MessageKind = Message['t'];

export type Via = 'udp' | 'tcp';

/** What the state machine asks its shell to send. TCP sends are one-shot streams to `to`. */
export interface Outgoing {
  to: Addr;
  via: Via;
  msgs: Message[];
}

export function addrKey(a: Addr): string {
  return `${a.host}:${a.port}`;
}
