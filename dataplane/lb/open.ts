// Picks a backend: `auto` is IPVS when the kernel has it (the generic netlink family "IPVS"
// resolves), nftables otherwise.
import { IpvsBackend, ipvsAvailable } from './ipvs/backend.js';
import type { LbBackend } from './model.js';
import { NftBackend } from './nft/backend.js';

export type BackendKind = 'nftables' | 'ipvs';

export function openBackend(kind: BackendKind | 'auto', netns: string): LbBackend {
  const k = kind === 'auto' ? (ipvsAvailable(netns) ? 'ipvs' : 'nftables') : kind;
  return k === 'ipvs' ? new IpvsBackend(netns) : new NftBackend(netns);
}
