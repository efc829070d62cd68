// Task executors for the node agent. See ./README.md for the design (namespaces, files, restart safety).
//
//   const rt = new NetnsRuntime({ stateDir: `${stateDir}/tasks` });   // or new DockerRuntime({...})
//   await rt.adopt();                        // first thing after (re)start: find our tasks again
//   rt.subscribe((e) => e.type === 'exit' && report(e.task.id, e.exitCode));
//   const t = await rt.start({ id, name: 'web.1', spec: task.spec });
//   // t.netns: name under /run/netns for Rtnl.open / createVeth({ peerNetns }) / moveLink
//   await rt.stop(id, 10_000); await rt.remove(id);
export * from './types.js';
export { NetnsRuntime, type NetnsRuntimeOptions } from './netns-runtime.js';
export type { DockerRuntime, DockerRuntimeOptions } from './docker-runtime.js';
import type { DockerRuntime, DockerRuntimeOptions } from './docker-runtime.js';

/**
 * The docker runtime, loaded on first use: dockerode (with grpc and protobufjs) is about a quarter
 * of meshd's start-up, and seconds in an emulated guest, for a runtime most nodes never use.
 */
export async function openDockerRuntime(opts: DockerRuntimeOptions): Promise<DockerRuntime> {
  return new (await import('./docker-runtime.js')).DockerRuntime(opts);
}
export { runHttpWorkload, runUdpEchoWorkload, workloadMain, type HttpWorkloadReply, type WorkloadOptions, type RunningWorkload } from './workload.js';

import { sleep } from './procfs.js';
import type { TaskInfo, TaskRuntime } from './types.js';

/** Resolves once a task has exited (polling inspect; for callers without an event subscription). */
export async function waitForExit(rt: TaskRuntime, id: string, timeoutMs: number): Promise<TaskInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const t = rt.inspect(id);
    if (!t) throw new Error(`no task ${id}`);
    if (t.state === 'exited') return t;
    if (Date.now() > deadline) throw new Error(`task ${id} still running after ${timeoutMs} ms`);
    await sleep(25);
  }
}
