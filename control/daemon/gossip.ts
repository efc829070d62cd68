// This node's gossip member (mesh/ on UDP+TCP 7946), with its keyring kept in step with the keys the
// managers hold in Raft. The ring only ever changes as the leader's rotation says: add a key
// everywhere first, make it primary after every node has it, and drop a key two rotations old, so no
// node ever receives a packet under a key it does not have.
import { Keyring, MeshTransport, DEFAULT_PORT, hexId, keyId, sodiumReady, type MeshStatus } from '../../mesh/index.js';
import type { Addr } from '../../mesh/messages.js';

export const MAX_GOSSIP_KEYS = 3;

/** What the cluster object holds: base64 keys, oldest first, and which one is primary. */
export interface GossipKeys {
  keys: string[];
  primary: number;
  rotatedAt: string;
}

export function gossipKeyIds(g: GossipKeys): { ids: string[]; primary: string } {
  const ids = g.keys.map((k) => hexId(keyId(Buffer.from(k, 'base64'))));
  return { ids, primary: ids[g.primary] ?? '' };
}

export class GossipAgent {
  private transport: MeshTransport | undefined;
  private starting: Promise<void> | undefined;
  private seeds: Addr[] = [];
  private lastError = 0;

  constructor(
    private readonly name: string,
    private readonly host: string,
    private readonly log: (l: string) => void,
    private readonly port = DEFAULT_PORT,
  ) {}

  get running(): boolean {
    return this.transport !== undefined;
  }

  /** Starts on first call with keys; later calls update the ring and the seeds. */
  async ensure(keys: GossipKeys, seeds: Addr[]): Promise<void> {
    this.seeds = seeds.filter((s) => !(s.host === this.host && s.port === this.port));
    if (!this.transport) {
      this.starting ??= (async () => {
        await sodiumReady();
        const raw = keys.keys.map((k) => Buffer.from(k, 'base64'));
        const primary = raw[keys.primary] ?? raw[0]!;
        const ring = new Keyring([primary, ...raw.filter((k) => !k.equals(primary))]);
        try {
          this.transport = await MeshTransport.start({ name: this.name, host: this.host, port: this.port, keyring: ring });
        } catch (e) {
          // Retried on the next heartbeat; say why once per minute, not once per beat.
          if (Date.now() - this.lastError > 60_000) this.log(`gossip: cannot listen on ${this.host}:${this.port} (UDP+TCP): ${(e as Error).message}; retrying`);
          this.lastError = Date.now();
          this.starting = undefined;
          return;
        }
        this.log(`gossip: member ${this.name} on ${this.host}:${this.port}, keys ${ring.ids().map(hexId).join(',')}`);
        if (this.seeds.length) this.transport.join(this.seeds);
      })();
      await this.starting;
      return;
    }
    this.applyKeys(keys);
    // Rejoin through the seeds while we know nobody (e.g. everyone else restarted).
    if (this.seeds.length && this.transport.node.members.allMembers().filter((m) => m.status === 'alive').length <= 1) this.transport.join(this.seeds);
  }

  private applyKeys(g: GossipKeys): void {
    const ring = this.transport!.sealer.ring;
    const want = g.keys.map((k) => Buffer.from(k, 'base64'));
    const wantIds = want.map((k) => keyId(k));
    const primary = wantIds[g.primary] ?? wantIds[0]!;
    const before = `${ring.ids().map(hexId).join(',')}/${hexId(ring.primaryId)}`;
    // Make room first (never the primary), then add, switch primary, and drop the old primary.
    for (const id of ring.ids()) if (!wantIds.includes(id) && id !== ring.primaryId) ring.remove(id);
    for (const k of want) if (!ring.ids().includes(keyId(k)) && ring.ids().length < MAX_GOSSIP_KEYS) ring.add(k);
    if (ring.ids().includes(primary)) ring.use(primary);
    for (const id of ring.ids()) if (!wantIds.includes(id) && id !== ring.primaryId) ring.remove(id);
    for (const k of want) if (!ring.ids().includes(keyId(k)) && ring.ids().length < MAX_GOSSIP_KEYS) ring.add(k);
    const after = `${ring.ids().map(hexId).join(',')}/${hexId(ring.primaryId)}`;
    if (before !== after) this.log(`gossip: keyring ${before} -> ${after}`);
  }

  /** Key ids this node holds and its primary: reported to the leader, which waits on them. */
  keyState(): { ids: string[]; primary: string } | undefined {
    const ring = this.transport?.sealer.ring;
    return ring ? { ids: ring.ids().map(hexId), primary: hexId(ring.primaryId) } : undefined;
  }

  status(): MeshStatus | undefined {
    return this.transport?.status();
  }

  get tables() {
    return this.transport?.node.tables;
  }

  /** Send what the node queued now instead of at the next timer. */
  pump(): void {
    this.transport?.pump();
  }

  async stop(graceful: boolean): Promise<void> {
    await this.starting?.catch(() => undefined);
    const t = this.transport;
    this.transport = undefined;
    this.starting = undefined;
    if (!t) return;
    if (graceful) await t.leave(500);
    else t.kill();
  }
}

export function gossipSeeds(managers: Record<string, string>, port = DEFAULT_PORT): Addr[] {
  return Object.values(managers).map((a) => ({ host: a.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), port }));
}
