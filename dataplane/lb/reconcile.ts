// The whole room behind one call: desired state per namespace -> sandbox preparation (sysctls,
// local addresses) -> observe -> plan -> apply, one backend (and one kernel transaction) per
// namespace. A namespace that drops out of the input is cleared; nothing to do writes nothing.
import { desiredLb, localAddresses } from './desired.js';
import type { LbBackend, LbChange, LbInput } from './model.js';
import { openBackend, type BackendKind } from './open.js';
import { plan } from './plan.js';
import { netnsExists } from '../netlink/index.js';
import { prepareSandbox } from './topology.js';

export interface NamespaceSync {
  netns: string;
  changes: LbChange[];
  /** kernel writes: sysctls and addresses, plus the backend's transactions or messages */
  writes: number;
  /** tracked connections deleted for backends that left */
  flushed: number;
  ms: number;
}

export interface SyncResult {
  namespaces: NamespaceSync[];
  cleared: string[];
  errors: Error[];
  writes: number;
  ms: number;
}

export class LbReconciler {
  private backends = new Map<string, LbBackend>();

  constructor(readonly kind: BackendKind | 'auto', readonly opts: { bridge?: string } = {}) {}

  backend(netns: string): LbBackend {
    let b = this.backends.get(netns);
    if (!b) {
      b = openBackend(this.kind, netns);
      this.backends.set(netns, b);
    }
    return b;
  }

  /**
   * Brings every namespace of the input to its desired state; errors are per namespace. The
   * kernel is read on a namespace's first sync, after an error, and whenever `reread` is set (a
   * periodic resync that catches changes made behind our back); otherwise the backend's own
   * model of the kernel is planned against, so a gossip event costs one small write and no dump.
   */
  async sync(input: LbInput, opts: { reread?: boolean } = {}): Promise<SyncResult> {
    const t0 = performance.now();
    const desired = desiredLb(input); // throws LbInputError on bad input, before any write
    const out: SyncResult = { namespaces: [], cleared: [], errors: [], writes: 0, ms: 0 };
    for (const [netns, state] of desired) {
      const t1 = performance.now();
      try {
        const be = this.backend(netns);
        const prep = await prepareSandbox(netns, localAddresses(state), { bridge: this.opts.bridge ?? 'br0', ipvs: be.kind === 'ipvs' });
        const known = opts.reread ? undefined : be.known();
        const changes = plan(state, known ?? (await be.observe()));
        const r = await be.apply(changes);
        out.namespaces.push({ netns, changes, writes: prep.writes + r.writes, flushed: r.flushed, ms: performance.now() - t1 });
        out.writes += prep.writes + r.writes;
      } catch (e) {
        out.errors.push(e instanceof Error ? e : new Error(String(e)));
      }
    }
    for (const [netns, be] of this.backends) {
      if (desired.has(netns)) continue;
      try {
        if (netnsExists(netns)) await be.clear();
        out.cleared.push(netns);
      } catch (e) {
        out.errors.push(e instanceof Error ? e : new Error(String(e)));
      }
      be.close();
      this.backends.delete(netns);
    }
    out.ms = performance.now() - t0;
    return out;
  }

  close(): void {
    for (const b of this.backends.values()) b.close();
    this.backends.clear();
  }
}
