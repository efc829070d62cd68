// Lifeguard dynamic suspicion (LHA-Suspicion): the timeout starts at `max` and shrinks towards `min`
// logarithmically as independent members confirm the suspicion; so a really dead node is declared fast
// when many see it, while a single lossy observer cannot kill a healthy node quickly.
import type { TimerHandle } from './timers.js';

export class Suspicion {
  private readonly confirmers = new Set<string>();
  private n = 0;
  deadline: number;
  /** The owner's pending timer for `deadline` (so that it can be cancelled). */
  timer: TimerHandle | null = null;

  /**
   * @param from the first suspecter; it does not count as a confirmation.
   * @param k confirmations expected before reaching `min` (0 means "go straight to min").
   */
  constructor(readonly start: number, from: string, private readonly k: number, private readonly min: number, private readonly max: number) {
    this.confirmers.add(from);
    this.deadline = start + this.timeout();
  }

  private timeout(): number {
    if (this.k < 1) return this.min;
    const frac = Math.log(this.n + 1) / Math.log(this.k + 1);
    return Math.max(this.min, Math.floor(this.max - frac * (this.max - this.min)));
  }

  /** True when `from` is a new confirmation (then the deadline moved earlier). */
  confirm(from: string): boolean {
    if (this.n >= this.k || this.confirmers.has(from)) return false;
    this.confirmers.add(from);
    this.n++;
    this.deadline = this.start + this.timeout();
    return true;
  }

  get confirmations(): number {
    return this.n;
  }
}
