// Lifeguard local health (LHM): a node that misses acks and nacks suspects itself first. A higher
// score stretches its own probe interval, so an overloaded node stops accusing healthy peers.

export class Awareness {
  private score = 0;
  constructor(private readonly max: number) {}

  apply(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }

  get health(): number {
    return this.score;
  }

  scale(timeout: number): number {
    return timeout * (this.score + 1);
  }
}
