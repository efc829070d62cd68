// Whether a task was made from the service's current task spec. Compared by content, not by
// specVersion: a `service scale` bumps the version but must not restart every task.
import type { TaskSpec } from '../store/objects.js';

// Key order does not matter (objects may come back from JSON in another order).
export function stableStringify(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`).join(',')}}`;
}

const cache = new WeakMap<TaskSpec, string>();

export function specKey(s: TaskSpec): string {
  let k = cache.get(s);
  if (k === undefined) {
    k = stableStringify(s);
    cache.set(s, k);
  }
  return k;
}

export function sameTaskSpec(a: TaskSpec, b: TaskSpec): boolean {
  return a === b || specKey(a) === specKey(b);
}
