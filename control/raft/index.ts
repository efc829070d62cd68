// Public surface of the Raft core.
export * from './types.js';
export type { Config } from './config.js';
export { MemoryStorage, bootstrapStorage, type Storage } from './storage.js';
export { RawNode, type Ready, type Status } from './node.js';
export { seededRandom } from './rand.js';
