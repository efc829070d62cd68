// Placement constraints: "node.labels.zone==a", "node.role!=manager", "node.hostname==n1", "node.id==ID".
//
// API (for the API layer, to refuse bad specs before they reach Raft, and for the scheduler):
//   parseConstraint(text)         -> Constraint, or throws ConstraintError naming the constraint
//   parseConstraints(texts)       -> Constraint[] (throws on the first bad one)
//   matchConstraint(c, node)      -> boolean
//   firstUnmet(cs, node)          -> the first constraint the node fails, or undefined
// Values compare exactly (case-sensitive), like labels in the store. A missing label fails `==` and
// satisfies `!=`, as in swarmkit: "not in zone a" holds for a node with no zone at all.
import type { NodeObject, NodeRole } from '../store/objects.js';

export type ConstraintField =
  | { kind: 'id' }
  | { kind: 'hostname' }
  | { kind: 'role' }
  | { kind: 'label'; label: string };

export interface Constraint {
  /** the constraint as written (trimmed), for messages */
  text: string;
  field: ConstraintField;
  op: '==' | '!=';
  value: string;
}

export class ConstraintError extends Error {
  constructor(
    readonly constraint: string,
    reason: string,
  ) {
    super(`invalid constraint "${constraint}": ${reason}`);
    this.name = 'ConstraintError';
  }
}

const ROLES: readonly NodeRole[] = ['manager', 'worker'];
// Label keys as Docker accepts them in practice (letters, digits, dot, dash, underscore, slash).
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

export function parseConstraint(text: string): Constraint {
  const s = text.trim();
  const eq = s.indexOf('==');
  const ne = s.indexOf('!=');
  if (eq < 0 && ne < 0) throw new ConstraintError(s, 'expected KEY==VALUE or KEY!=VALUE');
  if (eq >= 0 && ne >= 0) throw new ConstraintError(s, 'more than one operator');
  const at = eq >= 0 ? eq : ne;
  const op = eq >= 0 ? '==' : '!=';
  const key = s.slice(0, at).trim();
  const value = s.slice(at + 2).trim();
  if (value.includes('==') || value.includes('!=')) throw new ConstraintError(s, 'more than one operator');
  if (key === '') throw new ConstraintError(s, 'missing key');
  if (value === '') throw new ConstraintError(s, 'missing value');
  if (/\s/.test(value)) throw new ConstraintError(s, 'value contains whitespace');
  let field: ConstraintField;
  if (key === 'node.id') field = { kind: 'id' };
  else if (key === 'node.hostname') field = { kind: 'hostname' };
  else if (key === 'node.role') {
    if (!(ROLES as readonly string[]).includes(value)) throw new ConstraintError(s, `node.role must be manager or worker, not "${value}"`);
    field = { kind: 'role' };
  } else if (key.startsWith('node.labels.')) {
    const label = key.slice('node.labels.'.length);
    if (!LABEL_KEY.test(label)) throw new ConstraintError(s, `bad label key "${label}"`);
    field = { kind: 'label', label };
  } else {
    throw new ConstraintError(s, `unknown key "${key}" (expected node.id, node.hostname, node.role or node.labels.KEY)`);
  }
  return { text: `${key}${op}${value}`, field, op, value };
}

export function parseConstraints(texts: readonly string[]): Constraint[] {
  return texts.map(parseConstraint);
}

type ConstraintNode = Pick<NodeObject, 'id' | 'hostname' | 'role' | 'labels'>;

function fieldValue(f: ConstraintField, node: ConstraintNode): string | undefined {
  switch (f.kind) {
    case 'id':
      return node.id;
    case 'hostname':
      return node.hostname;
    case 'role':
      return node.role;
    case 'label':
      return Object.prototype.hasOwnProperty.call(node.labels, f.label) ? node.labels[f.label] : undefined;
  }
}

export function matchConstraint(c: Constraint, node: ConstraintNode): boolean {
  const v = fieldValue(c.field, node);
  return c.op === '==' ? v === c.value : v !== c.value;
}

export function firstUnmet(cs: readonly Constraint[], node: ConstraintNode): Constraint | undefined {
  for (const c of cs) if (!matchConstraint(c, node)) return c;
  return undefined;
}
