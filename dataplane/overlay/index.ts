export * from './model.js';
export * from './desired.js';
export { diff, simulate, splitRef, type Step } from './diff.js';
export { observe, sandboxPrefix, type Observed } from './observe.js';
export { reconcile, type ReconcileOptions, type ReconcileResult } from './reconcile.js';
