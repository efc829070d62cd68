// VNIs: the lowest free number of the configured range (Swarm starts at 4096; lower ones are left to
// hand-made VXLAN devices). Within a pass the cursor only moves up, since nothing is freed mid-pass.
export class VniPool {
  private readonly used = new Set<number>();
  private cursor: number;

  constructor(private readonly first: number, private readonly last: number) {
    this.cursor = first;
  }

  /** Marks an existing network's VNI; false if another network holds it already. */
  reserve(vni: number): boolean {
    if (this.used.has(vni)) return false;
    this.used.add(vni);
    return true;
  }

  take(): number | undefined {
    while (this.cursor <= this.last && this.used.has(this.cursor)) this.cursor++;
    if (this.cursor > this.last) return undefined;
    this.used.add(this.cursor);
    return this.cursor++;
  }

  inRange(vni: number): boolean {
    return Number.isInteger(vni) && vni >= this.first && vni <= this.last;
  }
}
