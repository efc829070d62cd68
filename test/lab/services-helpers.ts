// Shared by the service lab tests: a lab of real meshd processes driven through meshctl and the API.
import { call } from '../../control/api/client.js';
import { nodeSocketPath } from '../../control/lab/daemons.js';
import type { TaskRow, ServiceSummary } from '../../control/daemon/service-routes.js';
import { cli, type Res } from '../helpers/lab.js';

// meshctl, the workload and the result shape are the lab helpers' (one definition for every lab test)
export { cli, MESHCTL, WORKLOAD, type Res } from '../helpers/lab.js';

export class ServiceLab {
  constructor(
    readonly prefix: string,
    readonly subnet: string,
  ) {}

  ns(n: string): string {
    return `${this.prefix}-${n}`;
  }

  sock(n = 'n1') {
    return { socketPath: nodeSocketPath(this.ns(n)), display: n };
  }

  meshctl(...args: string[]): Promise<Res> {
    return cli(['-H', `unix://${nodeSocketPath(this.ns('n1'))}`, ...args]);
  }

  async up(nodes: number, managers: number): Promise<void> {
    const r = await cli(['lab', 'up', '--prefix', this.prefix, '--subnet', this.subnet, '--nodes', String(nodes), '--managers', String(managers)]);
    if (r.code !== 0) throw new Error(`lab up: ${r.stderr}${r.stdout}`);
  }

  async down(): Promise<void> {
    await cli(['lab', 'down', '--prefix', this.prefix]);
  }

  tasks(service: string): Promise<{ service: ServiceSummary; tasks: TaskRow[] }> {
    return call(this.sock(), 'GET', `/v1/services/${service}/tasks`);
  }

  async running(service: string): Promise<TaskRow[]> {
    return (await this.tasks(service)).tasks.filter((t) => t.desiredState === 'running' && t.state === 'running');
  }

  /** node hostname -> number of running tasks of the service */
  async spread(service: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const t of await this.running(service)) out[t.node] = (out[t.node] ?? 0) + 1;
    return out;
  }

  async until<T>(what: string, budgetMs: number, fn: () => Promise<T | undefined | false>): Promise<{ value: T; ms: number }> {
    const t0 = Date.now();
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v !== undefined && v !== false) return { value: v, ms: Date.now() - t0 };
      if (Date.now() - t0 > budgetMs) throw new Error(`${what}: not within ${budgetMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
