// In the namespace lab, with real meshd processes and netns tasks: time from `service create
// --replicas 50` to all running, from `service scale` 50 -> 100 to converged, and from kill -9 of a
// worker's meshd to every task replaced. Swarm, for reference: ~15 s to notice a dead node.
import { call } from '../../control/api/client.js';
import { labDown, labUp } from '../../control/lab/lab.js';
import { killNetnsProcesses, nodeSocketPath } from '../../control/lab/daemons.js';
import type { ServiceSummary, TaskRow } from '../../control/daemon/service-routes.js';
import type { Figure } from './figures.js';
import { WORKLOAD } from '../lab/services-helpers.js';

const PREFIX = 'mtbsvc';

export async function servicesBench(): Promise<Figure[]> {
  await labDown(PREFIX);
  try {
    await labUp({ prefix: PREFIX, nodes: 5, subnet: '198.19.240.0/24', mtu: 1500 }, () => undefined, { managers: 1 });
    const sock = { socketPath: nodeSocketPath(`${PREFIX}-n1`), display: 'n1' };
    const state = () => call<{ service: ServiceSummary; tasks: TaskRow[] }>(sock, 'GET', '/v1/services/bench/tasks');
    const waitRunning = async (n: number, notOn?: string): Promise<void> => {
      for (;;) {
        const s = await state();
        const running = s.tasks.filter((t) => t.desiredState === 'running' && t.state === 'running' && t.node !== notOn);
        if (running.length === n) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const spec = { name: 'bench', replicas: 50, task: { command: [WORKLOAD, 'http', '--port', '80'] } };
    let t0 = performance.now();
    await call(sock, 'POST', '/v1/services', { spec });
    await waitRunning(50);
    const create = performance.now() - t0;
    t0 = performance.now();
    await call(sock, 'POST', '/v1/services/bench/scale', { replicas: 100 });
    await waitRunning(100);
    const scale = performance.now() - t0;
    t0 = performance.now();
    await killNetnsProcesses(`${PREFIX}-n5`);
    await waitRunning(100, 'n5');
    const replace = performance.now() - t0;
    return [
      { name: 'services: create --replicas 50 to all running', value: create, unit: 'ms', note: '5-node lab, netns runtime' },
      { name: 'services: scale 50 -> 100 to converged', value: scale, unit: 'ms' },
      { name: 'services: kill -9 a worker to full replacement', value: replace, unit: 'ms', note: 'down after 3 missed 1 s heartbeats; Swarm: ~15 s to notice' },
    ];
  } finally {
    await labDown(PREFIX);
  }
}
