// The allocator's public surface (see allocate.ts for the calling order).
export { allocate, holdsAddresses, type AllocateInput, type AllocateResult } from './allocate.js';
export { checkAddressing, validateNetworkSpec, type UsedSubnet } from './validate.js';
export { checkPorts } from './ports.js';
export {
  DEFAULT_CONFIG, type AllocatorConfig, type AllocatorOp, type AllocationError, type AllocService, type AddressPool,
  type EndpointVip, type NetworkAllocation, type NetworkObject, type NetworkSpec, type ServiceAllocation,
} from './types.js';
