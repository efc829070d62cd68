export * from './model.js';
export * from './desired.js';
export * from './plan.js';
export * from './topology.js';
export { NftBackend } from './nft/backend.js';
export { IpvsBackend } from './ipvs/backend.js';
export { openBackend, type BackendKind } from './open.js';
export { LbReconciler, type SyncResult, type NamespaceSync } from './reconcile.js';
export { flushConntrack, conntrackFilter } from './conntrack.js';
