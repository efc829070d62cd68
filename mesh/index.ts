// meshd gossip: SWIM/Lifeguard membership, network-scoped tables, sealed wire, real transport.
export * from './messages.js';
export { DEFAULT_CONFIG, type MeshConfig, withDefaults } from './config.js';
export { decodePacket, encodePacket, LIMITS } from './codec.js';
export { Membership, type Member, type MemberEvent, type MembershipStats } from './membership.js';
export { Tables, type TableChange, type TableFilter, type TableStats } from './tables.js';
export { MeshNode, type MeshNodeOptions } from './node.js';
export { Keyring, Sealer, generateKey, keyId, hexId, sodiumReady, type DropReason } from './keyring.js';
export { MeshTransport, DEFAULT_PORT, type MeshStatus, type TransportOptions } from './transport.js';
export { Sfc32, type Rng } from './rng.js';
