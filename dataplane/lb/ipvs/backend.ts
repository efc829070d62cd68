// The IPVS backend: every frontend is an IPVS fwmark service (scheduler wrr, NAT forwarding) whose
// destinations are the backends; packets get their mark from our nftables mark table (./marks.ts).
// All IPVS messages of an apply go as one netlink batch; the mark table changes, if any, as one
// nft transaction. Ordering keeps traffic safe: services and destinations exist before a mark
// points at them, and marks go before the services they name are deleted.
import { Genl, NetlinkError, type NetlinkRequest } from '../../netlink/index.js';
import { AF_INET } from '../../netlink/constants.js';
import { flushConntrack } from '../conntrack.js';
import { execIn, mustExecIn, ToolError } from '../exec.js';
import { frontendKey, parseFrontendKey, type ApplyResult, type Frontend, type LbBackend, type LbChange, type LbState } from '../model.js';
import { flushTargets, simulate } from '../plan.js';
import { CMD, IPVS_GENL_NAME, IPVS_GENL_VERSION, FWD, decodeDest, decodeService, destAttrs, destKey, serviceAttrs, serviceKey, type IpvsDest, type IpvsService } from './codec.js';
import { indexOf, markOf, MARK_TABLE, parseMarks, renderMarkAdd, renderMarkBase, renderMarkDel, targetPortOf, type MarksObserved } from './marks.js';

export const SCHEDULER = 'wrr';

/** Whether this kernel has IPVS (resolving the family loads ip_vs when it is a module). */
export function ipvsAvailable(netns: string): boolean {
  const g = Genl.open(netns);
  try {
    return g.familyId(IPVS_GENL_NAME) !== undefined;
  } finally {
    g.close();
  }
}

const fwmarkService = (mark: number): IpvsService => ({ af: AF_INET, fwmark: mark, scheduler: SCHEDULER, flags: 0, timeout: 0, netmask: 0xffffffff });
const dest = (ip: string, port: number, weight: number): IpvsDest => ({ addr: ip, port, fwd: FWD.MASQ, weight, upperThreshold: 0, lowerThreshold: 0 });

export interface IpvsObserved {
  marks: MarksObserved;
  /** fwmark -> destinations, for every fwmark service in the namespace */
  services: Map<number, IpvsDest[]>;
  /** services we cannot use: not fwmark, or fwmark without a frontend */
  stale: IpvsService[];
  state: LbState;
  problems: string[];
}

export class IpvsBackend implements LbBackend {
  readonly kind = 'ipvs' as const;
  private genl: Genl;
  private family: number;
  private nftWrites = 0;
  private last: IpvsObserved | undefined;

  constructor(readonly netns: string) {
    this.genl = Genl.open(netns);
    this.family = this.genl.mustFamily(IPVS_GENL_NAME);
  }

  get writes(): number {
    return this.genl.writes + this.nftWrites;
  }

  /** IPVS services and destinations as the kernel reports them (GET_SERVICE / GET_DEST dumps). */
  dumpServices(): { service: IpvsService; dests: IpvsDest[] }[] {
    const out: { service: IpvsService; dests: IpvsDest[] }[] = [];
    for (const m of this.genl.dump(this.family, CMD.GET_SERVICE, IPVS_GENL_VERSION, [], 'list IPVS services', this.netns)) {
      const service = decodeService(m.payload);
      const dests = this.genl.dump(this.family, CMD.GET_DEST, IPVS_GENL_VERSION, [serviceKey(service)], 'list IPVS destinations', this.netns).map((d) => decodeDest(d.payload, service.af));
      out.push({ service, dests });
    }
    return out;
  }

  private async listMarks(): Promise<string> {
    const r = await execIn(this.netns, ['nft', '-j', 'list', 'table', 'ip', MARK_TABLE]);
    if (r.code === 0) return r.stdout;
    if (/No such file or directory/.test(r.stderr)) return '{"nftables":[]}';
    throw new ToolError('nft', this.netns, r.code, r.stderr);
  }

  async observe(): Promise<LbState> {
    const marks = parseMarks(await this.listMarks());
    const services = new Map<number, IpvsDest[]>();
    const stale: IpvsService[] = [];
    const problems = [...marks.problems];
    const byMark = new Map<number, string>();
    for (const [k, m] of marks.marks) byMark.set(m, k);
    for (const { service, dests } of this.dumpServices()) {
      if (service.fwmark === undefined || !byMark.has(service.fwmark) || service.scheduler !== SCHEDULER) stale.push(service);
      else services.set(service.fwmark, dests);
    }
    const state: LbState = { frontends: {} };
    for (const [key, mark] of marks.marks) {
      const dests = services.get(mark);
      const tp = targetPortOf(mark);
      if (!dests || dests.some((d) => d.port !== tp || d.fwd !== FWD.MASQ)) {
        problems.push(`frontend ${key}: no IPVS service for mark 0x${mark.toString(16)}, or destinations not in shape`);
        continue;
      }
      const f: Frontend = { match: parseFrontendKey(key), targetPort: tp, backends: {} };
      for (const d of dests) f.backends[d.addr] = d.weight;
      const s = marks.snat.get(mark);
      if (s !== undefined) f.snat = s;
      state.frontends[key] = f;
    }
    for (const m of marks.snat.keys()) if (!byMark.has(m)) problems.push(`stray snat element 0x${m.toString(16)}`);
    if (stale.length) problems.push(`${stale.length} IPVS services not ours or without a frontend`);
    this.last = { marks, services, stale, state, problems };
    return structuredClone(state);
  }

  known(): LbState | undefined {
    return this.last && this.last.problems.length === 0 ? this.last.state : undefined;
  }

  get problems(): string[] {
    return this.last?.problems ?? [];
  }

  async apply(changes: LbChange[]): Promise<ApplyResult> {
    const t0 = performance.now();
    const w0 = this.writes;
    const obs = this.last ?? (await this.observe(), this.last!);
    const repair = obs.problems.length > 0 || (obs.marks.tableExists && !obs.marks.base);
    if (changes.length === 0 && !repair) return { writes: 0, flushed: 0, ms: performance.now() - t0 };
    // The touched frontends' new values, checked against the model (a whole-state copy per change
    // costs more than the change at 10,000 frontends); the full final state only for a repair.
    const touchedBefore: LbState = { frontends: {} };
    for (const c of changes) if (obs.state.frontends[c.key]) touchedBefore.frontends[c.key] = obs.state.frontends[c.key]!;
    const after = simulate(touchedBefore, changes);
    const final = repair ? simulate(obs.state, changes) : undefined;

    // The model's maps are changed in place (copying 10,000 frontends' worth per change cost more
    // than the change): on any failure below the model is dropped and re-read.
    const marks = repair ? new Map<string, number>() : obs.marks.marks;
    // taken before any deletion, so a replaced frontend never gets its old mark back in the same batch
    const used = new Set<number>();
    if (repair || changes.some((c) => c.op === 'add-frontend')) for (const m of marks.values()) used.add(indexOf(m));
    const deleted: number[] = [];
    const allocate = (f: Frontend): number => {
      // Lowest free index: marks stay small and readable (ipvsadm -Ln shows them).
      let i = 1;
      while (used.has(i)) i++;
      if (i > 0xffff) throw new Error(`namespace ${this.netns}: more than 65535 frontends`);
      used.add(i);
      return markOf(f.targetPort, i);
    };

    const first: NetlinkRequest[] = []; // services and destinations that marks will point at
    const nft: string[] = [];
    const last: NetlinkRequest[] = []; // services to remove once no mark points at them
    const svcReq = (cmd: number, mark: number, extra: Parameters<Genl['request']>[3] = []): NetlinkRequest => {
      const s = fwmarkService(mark);
      const attrs = cmd === CMD.NEW_SERVICE ? [serviceAttrs(s)] : [serviceKey(s), ...extra];
      const op = cmd === CMD.NEW_SERVICE ? 'add IPVS service' : cmd === CMD.DEL_SERVICE ? 'delete IPVS service' : cmd === CMD.NEW_DEST ? 'add IPVS destination' : cmd === CMD.SET_DEST ? 'set IPVS destination' : 'delete IPVS destination';
      return this.genl.request(this.family, cmd, IPVS_GENL_VERSION, attrs, op, () => `fwmark 0x${mark.toString(16)} in ${this.netns}`);
    };
    const addFrontend = (f: Frontend): void => {
      const mark = allocate(f);
      marks.set(frontendKey(f.match), mark);
      first.push(svcReq(CMD.NEW_SERVICE, mark));
      for (const [ip, w] of Object.entries(f.backends)) first.push(svcReq(CMD.NEW_DEST, mark, [destAttrs(dest(ip, f.targetPort, w))]));
      nft.push(...renderMarkAdd(f.match, mark, f.snat));
    };

    if (repair) {
      // Start over: no IPVS service of ours, a fresh mark table, then everything of the final state.
      for (const s of [...obs.stale, ...[...obs.services.keys()].map(fwmarkService)]) first.push(this.genl.request(this.family, CMD.DEL_SERVICE, IPVS_GENL_VERSION, [serviceKey(s)], 'delete IPVS service', this.netns));
      if (obs.marks.tableExists) nft.push(`add table ip ${MARK_TABLE}`, `delete table ip ${MARK_TABLE}`);
      nft.push(...renderMarkBase());
      for (const f of Object.values(final!.frontends)) addFrontend(f);
    } else {
      if (!obs.marks.tableExists) nft.push(...renderMarkBase());
      for (const c of changes) {
        const f = c.frontend;
        if (c.op === 'del-frontend') {
          const mark = marks.get(c.key)!;
          nft.push(...renderMarkDel(f.match, mark, f.snat));
          last.push(svcReq(CMD.DEL_SERVICE, mark));
          marks.delete(c.key);
          deleted.push(mark);
        } else if (c.op === 'add-frontend') {
          addFrontend(f);
        } else {
          const mark = marks.get(c.key)!;
          for (const [ip, w] of Object.entries(c.added)) first.push(svcReq(CMD.NEW_DEST, mark, [destAttrs(dest(ip, f.targetPort, w))]));
          for (const [ip, w] of Object.entries(c.reweighted)) first.push(svcReq(CMD.SET_DEST, mark, [destAttrs(dest(ip, f.targetPort, w))]));
          for (const ip of c.removed) first.push(svcReq(CMD.DEL_DEST, mark, [destKey({ addr: ip, port: f.targetPort })]));
        }
      }
    }
    const run = (reqs: NetlinkRequest[], tolerateMissing: boolean): void => {
      if (!reqs.length) return;
      const { errors } = this.genl.batch(reqs);
      const real = errors.filter((e) => !(tolerateMissing && e instanceof NetlinkError && (e.code === 'ESRCH' || e.code === 'ENOENT')));
      if (real.length) throw new Error(`${real.length} of ${reqs.length} IPVS requests failed in ${this.netns}: ${real.slice(0, 3).map((e) => e.message).join('; ')}`);
    };
    try {
      run(first, repair);
      if (nft.length) {
        await mustExecIn(this.netns, ['nft', '-f', '-'], nft.join('\n') + '\n');
        this.nftWrites++;
      }
      run(last, false);
    } catch (e) {
      this.last = undefined; // re-read next time: a failed batch may have been applied in part
      throw e;
    }
    // The model of what the kernel now holds (marks included), so the next change needs no dump:
    // rebuilt after a repair, otherwise updated for the touched frontends only.
    const services = repair ? new Map<number, IpvsDest[]>() : obs.services;
    const snat = repair ? new Map<number, string>() : obs.marks.snat;
    for (const m of deleted) {
      services.delete(m);
      snat.delete(m);
    }
    const now = final ?? after;
    const touched = Object.keys(now.frontends);
    for (const k of touched) {
      const f = now.frontends[k];
      const mark = marks.get(k);
      if (!f || mark === undefined) continue;
      services.set(mark, Object.entries(f.backends).map(([ip, w]) => dest(ip, f.targetPort, w)));
      if (f.snat !== undefined) snat.set(mark, f.snat);
      else snat.delete(mark);
    }
    let state = final;
    if (!state) {
      state = obs.state;
      for (const c of changes) {
        const f = after.frontends[c.key];
        if (f) state.frontends[c.key] = f;
        else delete state.frontends[c.key];
      }
    }
    this.last = { marks: { tableExists: true, base: true, marks, snat, problems: [] }, services, stale: [], state, problems: [] };
    const tf = performance.now();
    const flushed = await flushConntrack(this.netns, flushTargets(changes));
    const flushMs = performance.now() - tf;
    return { writes: this.writes - w0, flushed, ms: performance.now() - t0, flushMs };
  }

  async clear(): Promise<void> {
    await this.observe();
    const obs = this.last!;
    const reqs = [...obs.stale, ...[...obs.services.keys()].map(fwmarkService)].map((s) => this.genl.request(this.family, CMD.DEL_SERVICE, IPVS_GENL_VERSION, [serviceKey(s)], 'delete IPVS service', this.netns));
    if (obs.marks.tableExists) {
      await mustExecIn(this.netns, ['nft', 'delete', 'table', 'ip', MARK_TABLE]);
      this.nftWrites++;
    }
    if (reqs.length) {
      const { errors } = this.genl.batch(reqs);
      if (errors.length) throw errors[0]!;
    }
    this.last = undefined;
  }

  close(): void {
    this.genl.close();
  }
}
