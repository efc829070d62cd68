// The cluster's PKI as pure operations on PEM text: a root CA (ECDSA P-256), node key pairs and
// certificate signing requests, node certificates (CN = node ID, OU = swarm-manager|swarm-worker,
// O = cluster ID), their parsing, and the root's digest that join tokens pin. Making certificates and
// requests is done by @peculiar/x509 over Node's WebCrypto; reading and verifying them by Node's own
// X509Certificate. Nothing here touches the disk or the network.
// @peculiar/x509 is loaded on first use: with its ASN.1 schemas it is ~200 modules, seconds of
// start-up in an emulated guest, and a running node only reads certificates. It resolves its
// algorithms through tsyringe, which needs the Reflect metadata API loaded first.
import crypto from 'node:crypto';

type X509Lib = typeof import('@peculiar/x509');
let x509Lib: Promise<X509Lib> | undefined;
function x509(): Promise<X509Lib> {
  return (x509Lib ??= (async () => {
    await import('reflect-metadata');
    const lib = await import('@peculiar/x509');
    lib.cryptoProvider.set(crypto.webcrypto as unknown as Crypto);
    return lib;
  })());
}

export type NodeRole = 'manager' | 'worker';

export const OU: Record<NodeRole, string> = { manager: 'swarm-manager', worker: 'swarm-worker' };

const EC: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIG: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
/** Root CAs live 20 years (as Swarm's); rotating the root is a separate operation. */
export const ROOT_VALIDITY_MS = 20 * 365 * 24 * 3600_000;
/** Node certificates: 90 days by default (Swarm's default), changed with `swarm update --cert-expiry`. */
export const DEFAULT_CERT_EXPIRY_MS = 90 * 24 * 3600_000;
/** The shortest expiry `swarm update --cert-expiry` accepts (Swarm says 1 h; shorter helps tests). */
export const MIN_CERT_EXPIRY_MS = 10_000;

export class PkiError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PkiError';
  }
}

export interface RootCA {
  /** PEM certificate, public. */
  cert: string;
  /** PEM PKCS#8 private key: kept only in the (encrypted) Raft store. */
  key: string;
}

export interface KeyPair {
  /** PEM PKCS#8 */
  key: string;
  keys: CryptoKeyPair;
}

export interface NodeCertInfo {
  nodeId: string;
  role: NodeRole;
  clusterId: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

const subtle = crypto.webcrypto.subtle as unknown as SubtleCrypto;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function unpem(text: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`).exec(text);
  if (!m) throw new PkiError(`expected a PEM ${label}`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

function serial(): string {
  // positive 128-bit serial (the top bit clear so DER does not need a sign byte)
  const b = crypto.randomBytes(16);
  b[0]! &= 0x7f;
  b[0]! |= 0x01;
  return b.toString('hex');
}

export async function generateKeyPair(): Promise<KeyPair> {
  const keys = (await subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  return { keys, key: pem('PRIVATE KEY', await subtle.exportKey('pkcs8', keys.privateKey)) };
}

async function importPrivate(keyPem: string): Promise<CryptoKey> {
  return subtle.importKey('pkcs8', new Uint8Array(unpem(keyPem, 'PRIVATE KEY')), EC, false, ['sign']);
}

/** A new root CA for a cluster. */
export async function createRootCA(clusterId: string, now = new Date()): Promise<RootCA> {
  const lib = await x509();
  const kp = await generateKeyPair();
  const cert = await lib.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: [{ CN: ['swarm-ca'] }, { O: [clusterId] }],
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + ROOT_VALIDITY_MS),
    signingAlgorithm: SIG,
    keys: kp.keys,
    extensions: [
      new lib.BasicConstraintsExtension(true, 1, true),
      new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign | lib.KeyUsageFlags.cRLSign, true),
      await lib.SubjectKeyIdentifierExtension.create(kp.keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: kp.key };
}

const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Base 36 of a big-endian number, left-padded to `len` digits (Swarm's token alphabet). */
export function base36(bytes: Uint8Array, len: number): string {
  let n = BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
  let s = '';
  while (s.length < len) {
    s = BASE36[Number(n % 36n)]! + s;
    n /= 36n;
  }
  return s;
}

/** The digest join tokens pin: SHA-256 of the root certificate's DER, in 50 base-36 digits. */
export function caDigest(caCertPem: string): string {
  return base36(crypto.createHash('sha256').update(unpem(caCertPem, 'CERTIFICATE')).digest(), 50);
}

/** A PKCS#10 request for a node's key; the CA decides the subject, the request proves the key. */
export async function createCsr(kp: KeyPair, nodeId: string): Promise<string> {
  const lib = await x509();
  const csr = await lib.Pkcs10CertificateRequestGenerator.create({ name: [{ CN: [nodeId] }], keys: kp.keys, signingAlgorithm: SIG });
  return csr.toString('pem') + '\n';
}

/**
 * The CA signs a node certificate for the key in `csrPem`. The subject comes from the caller (the
 * manager's decision: node ID, the role recorded in the store, the cluster), never from the request;
 * the request only has to be signed by the key it carries (proof of possession) and name the same node.
 */
export async function issueNodeCert(ca: RootCA, csrPem: string, subject: { nodeId: string; role: NodeRole; clusterId: string }, expiryMs: number, now = new Date()): Promise<string> {
  const lib = await x509();
  let csr: InstanceType<X509Lib['Pkcs10CertificateRequest']>;
  try {
    csr = new lib.Pkcs10CertificateRequest(csrPem);
  } catch (e) {
    throw new PkiError(`the certificate signing request is not valid PKCS#10: ${(e as Error).message}`);
  }
  let signed = false;
  try {
    signed = await csr.verify();
  } catch {
    // a malformed signature value: as bad as a wrong one
  }
  if (!signed) throw new PkiError('the certificate signing request is not signed by the key it carries');
  const cn = csr.subjectName.getField('CN')[0];
  if (cn !== subject.nodeId) throw new PkiError(`the certificate signing request names node "${cn ?? ''}", not ${subject.nodeId}`);
  const caCert = new lib.X509Certificate(ca.cert);
  const cert = await lib.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: [{ CN: [subject.nodeId] }, { OU: [OU[subject.role]] }, { O: [subject.clusterId] }],
    issuer: caCert.subject,
    // Not backdated: a removed node's certificates are refused by comparing notBefore with the
    // removal time (see control/ca/authz.ts), so a certificate must not claim to predate its issue.
    notBefore: now,
    notAfter: new Date(now.getTime() + expiryMs),
    signingAlgorithm: SIG,
    publicKey: csr.publicKey,
    signingKey: await importPrivate(ca.key),
    extensions: [
      new lib.BasicConstraintsExtension(false, undefined, true),
      new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature | lib.KeyUsageFlags.keyEncipherment, true),
      // every node is both a TLS server (2377) and a client (of managers, of other managers)
      new lib.ExtendedKeyUsageExtension([lib.ExtendedKeyUsage.serverAuth, lib.ExtendedKeyUsage.clientAuth]),
      await lib.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return cert.toString('pem') + '\n';
}

/** Reads a certificate (Node's own parser); a clear error for anything that is not one. */
function readCert(certPem: string, what: string): crypto.X509Certificate {
  try {
    return new crypto.X509Certificate(certPem);
  } catch (e) {
    throw new PkiError(`${what} is not a valid PEM X.509 certificate: ${(e as Error).message}`);
  }
}

/** Fields of a subject as Node prints it: one "KEY=value" per line. */
function subjectFields(subject: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of subject.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !out.has(line.slice(0, eq))) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/** The validity dates of a certificate (Node gives them as text, to the second). */
function validity(c: crypto.X509Certificate): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(c.validFrom), notAfter: new Date(c.validTo) };
}

/** Reads a node certificate's identity; throws if it is not one of ours. */
export function parseNodeCert(certPem: string): NodeCertInfo {
  const c = readCert(certPem, 'the node certificate');
  const { notBefore, notAfter } = validity(c);
  return infoFromSubject(c.subject, c.serialNumber, notBefore, notAfter);
}

/** The cluster ID a root CA certificate was made for (its subject's O). */
export function caClusterId(caPem: string): string {
  const o = subjectFields(readCert(caPem, 'the root CA certificate').subject).get('O');
  if (!o) throw new PkiError('the root CA certificate names no cluster (no O in its subject)');
  return o;
}

/**
 * The identity in a subject: as Node's X509Certificate prints it (one "KEY=value" per line) or as
 * TLS reports it (`getPeerCertificate().subject`).
 */
export function infoFromSubject(subject: string | { CN?: string; OU?: string; O?: string }, serialNumber: string, notBefore: Date, notAfter: Date): NodeCertInfo {
  let cn: string | undefined;
  let ou: string | undefined;
  let o: string | undefined;
  if (typeof subject === 'string') {
    const f = subjectFields(subject);
    cn = f.get('CN');
    ou = f.get('OU');
    o = f.get('O');
  } else {
    ({ CN: cn, OU: ou, O: o } = subject);
  }
  const role = ou === OU.manager ? 'manager' : ou === OU.worker ? 'worker' : undefined;
  if (!cn || !role || !o) throw new PkiError(`not a node certificate (subject CN=${cn ?? '?'}, OU=${ou ?? '?'}, O=${o ?? '?'})`);
  return { nodeId: cn, role, clusterId: o, serial: serialNumber.toLowerCase(), notBefore, notAfter };
}

/** Checks that `certPem` was signed by `caPem`, is in its validity period and holds `keyPem`'s key. */
export async function verifyNodeCert(certPem: string, caPem: string, keyPem?: string, now = new Date()): Promise<NodeCertInfo> {
  const c = readCert(certPem, 'the node certificate');
  const ca = readCert(caPem, 'the root CA certificate');
  if (!c.verify(ca.publicKey)) throw new PkiError('the certificate was not signed by this cluster\'s root CA');
  const { notBefore, notAfter } = validity(c);
  if (now < notBefore || now > notAfter) throw new PkiError(`the certificate is valid from ${notBefore.toISOString()} to ${notAfter.toISOString()}, not now (${now.toISOString()})`);
  if (keyPem) {
    const mine = crypto.createPublicKey(crypto.createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    const theirs = c.publicKey.export({ type: 'spki', format: 'der' });
    if (!mine.equals(theirs)) throw new PkiError('the certificate is not for this node\'s key');
  }
  return parseNodeCert(certPem);
}

/**
 * When to renew: at a random point between 50% and 80% of the certificate's lifetime (Swarm's rule),
 * so a cluster's nodes do not all renew at once. Returns the time as ms since the epoch.
 */
export function renewAt(info: Pick<NodeCertInfo, 'notBefore' | 'notAfter'>, random: () => number = Math.random): number {
  const nb = info.notBefore.getTime();
  const life = info.notAfter.getTime() - nb;
  return nb + life * (0.5 + 0.3 * random());
}
