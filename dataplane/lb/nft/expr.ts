// nf_tables rule expressions as netlink attributes (each an NFTA_LIST_ELEM holding
// NFTA_EXPR_NAME + NFTA_EXPR_DATA). Only the expressions our frontend chains use; the shapes are
// the ones nft 1.0.6 sends for the same rule text (the unit tests compare bytes with its capture).
import { bytes, nest, str, type Attr } from '../../netlink/attrs.js';
import { be32 } from './nfnl.js';

const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
export const NFTA_DATA_VALUE = 1;
export const NFTA_DATA_VERDICT = 2;

/** Registers: the 16-byte NFT_REG_1 overlaps the 4-byte NFT_REG32_00..03. */
export const REG = { VERDICT: 0, R1: 1, R32_00: 8, R32_01: 9 } as const;

export const NFT_META_L4PROTO = 16;
export const NFT_CMP_EQ = 0;
export const NFT_NG_RANDOM = 1;
export const NFT_BYTEORDER_HTON = 1;
export const NFT_NAT_DNAT = 1;

const expr = (name: string, data: Attr[]): Attr => nest(NFTA_LIST_ELEM, [str(NFTA_EXPR_NAME, name), nest(NFTA_EXPR_DATA, data)]);

/** meta load KEY => dreg */
export const meta = (key: number, dreg: number): Attr => expr('meta', [be32(2 /* KEY */, key), be32(1 /* DREG */, dreg)]);

/** cmp OP sreg, value (raw bytes as the register holds them) */
export const cmp = (sreg: number, op: number, value: Buffer): Attr =>
  expr('cmp', [be32(1 /* SREG */, sreg), be32(2 /* OP */, op), nest(3 /* DATA */, [bytes(NFTA_DATA_VALUE, value)])]);

/** numgen random mod N => dreg (a host-endian u32 in [offset, offset + N)) */
export const numgen = (dreg: number, modulus: number, offset = 0): Attr =>
  expr('numgen', [be32(1 /* DREG */, dreg), be32(2 /* MODULUS */, modulus), be32(3 /* TYPE */, NFT_NG_RANDOM), be32(4 /* OFFSET */, offset)]);

/** byteorder dreg = hton(sreg, len, size): interval maps compare keys as big-endian bytes */
export const hton = (sreg: number, dreg: number, len: number, size: number): Attr =>
  expr('byteorder', [be32(1 /* SREG */, sreg), be32(2 /* DREG */, dreg), be32(3 /* OP */, NFT_BYTEORDER_HTON), be32(4 /* LEN */, len), be32(5 /* SIZE */, size)]);

/**
 * lookup sreg in a set; with dreg, a map lookup that loads the element's data. An anonymous set of
 * the same transaction is found by setId (its name still holds the kernel's "%d").
 */
export function lookup(sreg: number, set: string, setId: number | undefined, dreg?: number): Attr {
  const a: Attr[] = [be32(2 /* SREG */, sreg)];
  if (dreg !== undefined) a.push(be32(3 /* DREG */, dreg));
  a.push(str(1 /* SET */, set));
  if (setId !== undefined) a.push(be32(4 /* SET_ID */, setId));
  return expr('lookup', a);
}

/** nat TYPE ip addr_min reg [proto_min reg]; the kernel sets PROTO_SPECIFIED itself */
export function nat(type: number, family: number, regAddr: number, regProto?: number): Attr {
  const a: Attr[] = [be32(1 /* TYPE */, type), be32(2 /* FAMILY */, family), be32(3 /* REG_ADDR_MIN */, regAddr)];
  if (regProto !== undefined) a.push(be32(5 /* REG_PROTO_MIN */, regProto));
  return expr('nat', a);
}
