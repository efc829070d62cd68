// Linearizability checker for a key-value register history (Wing & Gong search with memoization, as in
// Lowe's and Porcupine's checkers). Keys are independent registers, so each key is checked alone.

export interface Op {
  readonly id: string;
  readonly kind: 'put' | 'get';
  readonly key: string;
  /** put: value written; get: value returned. */
  readonly value: string;
  readonly call: number;
  /** Infinity if no response was seen (the op may or may not have taken effect). */
  readonly ret: number;
}

export interface CheckResult {
  ok: boolean;
  /** Key whose history is not linearizable. */
  key?: string;
  /** Search gave up (too many states): treated as ok but reported. */
  inconclusive?: boolean;
}

const INITIAL = '';

export function checkHistory(ops: readonly Op[], maxStates = 2_000_000): CheckResult {
  const byKey = new Map<string, Op[]>();
  for (const op of ops) {
    // a read without a response constrains nothing
    if (op.kind === 'get' && op.ret === Infinity) continue;
    let l = byKey.get(op.key);
    if (!l) byKey.set(op.key, (l = []));
    l.push(op);
  }
  let inconclusive = false;
  for (const [key, list] of byKey) {
    const r = checkKey(list, maxStates);
    if (r === 'fail') return { ok: false, key };
    if (r === 'unknown') inconclusive = true;
  }
  return inconclusive ? { ok: true, inconclusive } : { ok: true };
}

function checkKey(input: Op[], maxStates: number): 'ok' | 'fail' | 'unknown' {
  const ops = input.slice().sort((a, b) => a.call - b.call);
  const n = ops.length;
  const complete = ops.filter((o) => o.ret !== Infinity).length;
  const done = new Uint8Array(n);
  const seen = new Set<string>();
  let states = 0;
  let gaveUp = false;

  const search = (value: string, doneComplete: number): boolean => {
    if (doneComplete === complete) return true;
    if (++states > maxStates) {
      gaveUp = true;
      return true;
    }
    // an op may go next only if it was called before every pending op returned
    let minRet = Infinity;
    for (let i = 0; i < n; i++) if (!done[i] && ops[i]!.ret < minRet) minRet = ops[i]!.ret;
    for (let i = 0; i < n; i++) {
      if (done[i]) continue;
      const op = ops[i]!;
      if (op.call > minRet) break; // sorted by call
      let next = value;
      if (op.kind === 'get') {
        if (op.value !== value) continue;
      } else next = op.value;
      done[i] = 1;
      const memo = maskKey(done) + '|' + next;
      if (!seen.has(memo)) {
        seen.add(memo);
        if (search(next, doneComplete + (op.ret === Infinity ? 0 : 1))) {
          done[i] = 0;
          return true;
        }
      }
      done[i] = 0;
    }
    return false;
  };
  const ok = search(INITIAL, 0);
  if (gaveUp) return 'unknown';
  return ok ? 'ok' : 'fail';
}

function maskKey(done: Uint8Array): string {
  let s = '';
  let acc = 0;
  for (let i = 0; i < done.length; i++) {
    acc = (acc << 1) | done[i]!;
    if (i % 15 === 14) {
      s += String.fromCharCode(acc + 1);
      acc = 0;
    }
  }
  return s + String.fromCharCode(acc + 1);
}
