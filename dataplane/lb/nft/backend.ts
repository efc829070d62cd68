// The nftables backend: our own table in one namespace. Frontend changes are nf_tables netlink
// transactions on our own socket (netlink-codec.ts): `nft` dumps and caches the whole table before
// every command, which at 10,000 frontends costs far more than the change itself. The table's base
// and a repair (the whole table replaced in one transaction) go through `nft -f -` (render.ts).
// A change touches only the changed frontends' objects; nothing to do means no write at all
// (writes counts transactions sent to the kernel).
//
// Each frontend's rule is fixed and its backends live in its own named data map (render.ts), so a
// backend change is map elements only: no rule, hence no validation of the whole table at commit
// (the kernel validates only when a rule with nat/lookup/meta or a verdict element to a chain comes
// in), and no set created. What a one-backend change still costs at 10,000 frontends is the
// kernel's: it finds the map by name by walking the table's sets in creation order (cold caches:
// ~1.5 ms for a map near the start of the list, ~5 ms near its end; see test/bench/lb-walk-probe.ts),
// and every commit walks every chain of the namespace. A new map's elements name it by transaction
// id instead (found without the walk), which a full sync gains most from.
import { flushConntrack } from '../conntrack.js';
import { execIn, mustExecIn, ToolError } from '../exec.js';
import type { ApplyResult, LbBackend, LbChange, LbState } from '../model.js';
import { flushTargets, simulate } from '../plan.js';
import { parseTable, type NftObserved } from './parse.js';
import { changeMessages } from './netlink-codec.js';
import { renderBase, renderFull, TABLE } from './render.js';
import { NftSocket } from './transaction.js';

export class NftBackend implements LbBackend {
  readonly kind = 'nftables' as const;
  writes = 0;
  private last: NftObserved | undefined;
  /** opened on the first write: observe-only instances hold no socket */
  private sock: NftSocket | undefined;
  constructor(readonly netns: string) {}

  /** The raw nft view (what observe parsed): for tests and `meshctl debug dataplane`. */
  async listJson(): Promise<string> {
    const r = await execIn(this.netns, ['nft', '-j', 'list', 'table', 'ip', TABLE]);
    if (r.code === 0) return r.stdout;
    if (/No such file or directory/.test(r.stderr)) return '{"nftables":[]}';
    throw new ToolError('nft', this.netns, r.code, r.stderr);
  }

  async observe(): Promise<LbState> {
    this.last = parseTable(await this.listJson());
    return structuredClone(this.last.state);
  }

  known(): LbState | undefined {
    return this.last && this.last.problems.length === 0 ? this.last.state : undefined;
  }

  /** Whether the next apply rebuilds the table (missing base, unreadable or stray objects). */
  get needsRepair(): boolean {
    return !!this.last && this.last.tableExists && this.last.problems.length > 0;
  }

  get problems(): string[] {
    return this.last?.problems ?? [];
  }

  async apply(changes: LbChange[]): Promise<ApplyResult> {
    const t0 = performance.now();
    const obs = this.last ?? (await this.observe(), this.last!);
    const repair = obs.tableExists && obs.problems.length > 0;
    if (!repair && changes.length === 0) return { writes: 0, flushed: 0, ms: performance.now() - t0 };
    // The touched frontends' new values, checked against the model: at 10,000 frontends even a
    // shallow copy of the whole state costs more than the kernel write of a one-backend change.
    const touched: LbState = { frontends: {} };
    for (const c of changes) if (obs.state.frontends[c.key]) touched.frontends[c.key] = obs.state.frontends[c.key]!;
    const after = simulate(touched, changes);
    const drainedNow = (key: string, ip: string): boolean => obs.drainKeys.has(`${key} ${ip}`);
    let writes = 0;
    let commitMs = 0;
    let commitCpuMs = 0;
    try {
      if (repair) {
        // Repair: the whole table again, in the same transaction as its removal (never half there).
        const final = simulate(obs.state, changes);
        const lines = [`add table ip ${TABLE}`, `delete table ip ${TABLE}`, ...renderBase(), ...renderFull(Object.values(final.frontends))];
        await mustExecIn(this.netns, ['nft', '-f', '-'], lines.join('\n') + '\n');
        writes++;
        const drainKeys = new Set<string>();
        for (const [k, f] of Object.entries(final.frontends)) for (const [ip, w] of Object.entries(f.backends)) if (w === 0) drainKeys.add(`${k} ${ip}`);
        this.last = { base: true, tableExists: true, state: final, staleChains: [], staleMaps: [], staleElements: [], drainKeys, problems: [] };
        return { writes, flushed: await flushConntrack(this.netns, flushTargets(changes)), ms: performance.now() - t0 };
      }
      if (!obs.tableExists) {
        // The base once, by nft; the frontends then go in as into an empty table.
        await mustExecIn(this.netns, ['nft', '-f', '-'], renderBase().join('\n') + '\n');
        writes++;
      }
      this.sock ??= new NftSocket(this.netns);
      const msgs = changeMessages(changes, drainedNow);
      const tc = performance.now();
      const cpu0 = process.cpuUsage();
      this.sock.commit(msgs);
      const cpu = process.cpuUsage(cpu0);
      commitMs = performance.now() - tc;
      commitCpuMs = (cpu.user + cpu.system) / 1000;
      writes++;
    } catch (e) {
      this.last = undefined; // nothing of the failed transaction was applied, but read the kernel again anyway
      throw e;
    } finally {
      this.writes += writes;
    }
    // What the kernel now holds, without reading it back: the model the planner relies on, updated
    // in place for the touched frontends only.
    const st = obs.state.frontends;
    for (const c of changes) {
      for (const ip of Object.keys(st[c.key]?.backends ?? {})) obs.drainKeys.delete(`${c.key} ${ip}`);
      const f = after.frontends[c.key];
      if (f) st[c.key] = f;
      else delete st[c.key];
      for (const [ip, w] of Object.entries(f?.backends ?? {})) if (w === 0) obs.drainKeys.add(`${c.key} ${ip}`);
    }
    this.last = { ...obs, base: true, tableExists: true };
    const tf = performance.now();
    const flushed = await flushConntrack(this.netns, flushTargets(changes));
    const flushMs = performance.now() - tf;
    return { writes, flushed, ms: performance.now() - t0, flushMs, commitMs, commitCpuMs };
  }

  async clear(): Promise<void> {
    const r = await execIn(this.netns, ['nft', 'delete', 'table', 'ip', TABLE]);
    if (r.code !== 0 && !/No such file or directory/.test(r.stderr)) throw new ToolError('nft', this.netns, r.code, r.stderr);
    if (r.code === 0) this.writes++;
    this.last = undefined;
  }

  close(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}
