// Leader: how long each node has been silent, counted in the monitor's own ticks.
//
// A wall-clock "now - last heartbeat" blames the nodes for the leader's own pauses: when the
// leader's event loop is blocked (a long synchronous pass, a starved CPU), the heartbeats that
// arrive meanwhile wait in socket buffers, and after the pause Node runs due timers (the monitor)
// before it reads those sockets, so every node looks silent for the length of the pause and is
// marked down although it never stopped. Counting silence per tick, each tick adding at most
// `maxStepMs`, charges a pause of the monitor itself as one step at most.
export class SilenceClock {
  private silent = new Map<string, number>();
  private lastTick: number | undefined;

  constructor(private readonly maxStepMs: number) {}

  /** A heartbeat (or an open session) from the node: silent for 0 ms from now. */
  heard(id: string): void {
    this.silent.set(id, 0);
  }

  /** Advances every listed node's silence by the time since the last tick, capped; others are forgotten. */
  tick(now: number, ids: Iterable<string>): void {
    const step = this.lastTick === undefined ? 0 : Math.min(Math.max(0, now - this.lastTick), this.maxStepMs);
    this.lastTick = now;
    const next = new Map<string, number>();
    for (const id of ids) next.set(id, (this.silent.get(id) ?? 0) + step);
    this.silent = next;
  }

  /** Milliseconds of silence counted for the node (0 for a node not seen by a tick yet). */
  silentFor(id: string): number {
    return this.silent.get(id) ?? 0;
  }

  /** A new leader: no history, every node starts a fresh grace period. */
  reset(): void {
    this.silent.clear();
    this.lastTick = undefined;
  }
}
