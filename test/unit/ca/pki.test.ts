// The PKI's pure operations: root CA, CSRs, issuing (subject decided by the CA, proof of possession),
// verification, the digest tokens pin, tokens, renewal timing, and the key file with autolock.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { caClusterId, caDigest, createCsr, createRootCA, generateKeyPair, issueNodeCert, parseNodeCert, renewAt, verifyNodeCert } from '../../../control/ca/pki.js';
import { checkToken, newToken, parseToken } from '../../../control/daemon/tokens.js';
import { cipherReady } from '../../../control/ca/seal.js';
import { newNodeSecrets, newUnlockKey, readKeyFile, unlockNodeSecrets, writeNodeSecrets, LockedError } from '../../../control/ca/node-keys.js';

await cipherReady();

t.test('a node certificate: CN = node ID, OU = role, O = cluster; signed by the root; for the CSR key', async (t) => {
  const ca = await createRootCA('cluster1');
  t.equal(caClusterId(ca.cert), 'cluster1');
  const x = new crypto.X509Certificate(ca.cert);
  t.ok(x.ca, 'the root is a CA');
  t.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'ECDSA P-256');
  const kp = await generateKeyPair();
  const csr = await createCsr(kp, 'node1');
  t.notOk(csr.includes('PRIVATE'), 'the CSR carries no private key');
  const pem = await issueNodeCert(ca, csr, { nodeId: 'node1', role: 'manager', clusterId: 'cluster1' }, 3600_000);
  const info = await verifyNodeCert(pem, ca.cert, kp.key);
  t.match(info, { nodeId: 'node1', role: 'manager', clusterId: 'cluster1' });
  t.ok(Math.abs(info.notAfter.getTime() - info.notBefore.getTime() - 3600_000) < 2000, 'lifetime is the expiry asked for');
  const nx = new crypto.X509Certificate(pem);
  t.match(nx.subject, /CN=node1/);
  t.match(nx.subject, /OU=swarm-manager/);
  t.match(nx.subject, /O=cluster1/);
  t.ok(nx.verify(x.publicKey), 'Node\'s own X.509 agrees the root signed it');
  t.ok(nx.checkIssued(x));
  t.same(parseNodeCert(pem).role, 'manager');
});

t.test('the CA refuses what it must', async (t) => {
  const ca = await createRootCA('c');
  const other = await createRootCA('c');
  const kp = await generateKeyPair();
  const csr = await createCsr(kp, 'node1');
  await t.rejects(issueNodeCert(ca, csr, { nodeId: 'node2', role: 'worker', clusterId: 'c' }, 60_000), /names node "node1", not node2/);
  // a CSR whose signature does not match its key: swap the signature bytes of two CSRs
  const csr2 = await createCsr(await generateKeyPair(), 'node1');
  const a = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const b = Buffer.from(csr2.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const forged = Buffer.concat([a.subarray(0, a.length - 72), b.subarray(b.length - 72)]);
  const forgedPem = `-----BEGIN CERTIFICATE REQUEST-----\n${forged.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await t.rejects(issueNodeCert(ca, forgedPem, { nodeId: 'node1', role: 'worker', clusterId: 'c' }, 60_000), /not signed by the key it carries|not valid PKCS#10/);
  await t.rejects(issueNodeCert(ca, 'garbage', { nodeId: 'node1', role: 'worker', clusterId: 'c' }, 60_000), /not valid PKCS#10/);
  const pem = await issueNodeCert(ca, csr, { nodeId: 'node1', role: 'worker', clusterId: 'c' }, 60_000);
  await t.rejects(verifyNodeCert(pem, other.cert), /not signed by this cluster's root CA/);
  await t.rejects(verifyNodeCert(pem, ca.cert, (await generateKeyPair()).key), /not for this node's key/);
  await t.rejects(verifyNodeCert(pem, ca.cert, kp.key, new Date(Date.now() + 120_000)), /not now/);
});

t.test('tokens pin the root CA by digest', async (t) => {
  const ca = await createRootCA('c');
  const other = await createRootCA('c');
  t.match(caDigest(ca.cert), /^[0-9a-z]{50}$/);
  t.not(caDigest(ca.cert), caDigest(other.cert), 'same cluster ID, other key: other digest');
  const tokens = { worker: newToken(ca.cert), manager: newToken(ca.cert) };
  t.equal(parseToken(tokens.worker).digest, caDigest(ca.cert));
  t.equal(checkToken(tokens.worker, ca.cert, tokens), 'worker');
  t.equal(checkToken(tokens.manager, ca.cert, tokens), 'manager');
  t.throws(() => checkToken(newToken(other.cert), ca.cert, tokens), /CA digest does not match/);
  t.throws(() => checkToken(newToken(ca.cert), ca.cert, tokens), /secret does not match/);
  t.throws(() => parseToken('SWMTKN-1-abc'), /malformed/);
});

t.test('renewal falls between 50% and 80% of the lifetime', async (t) => {
  const nb = new Date(1_000_000);
  const na = new Date(1_000_000 + 100_000);
  t.equal(renewAt({ notBefore: nb, notAfter: na }, () => 0), 1_050_000);
  t.equal(renewAt({ notBefore: nb, notAfter: na }, () => 1), 1_080_000);
});

t.test('the key file: 0600, sealed with the unlock key under autolock, refused with a wrong key', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-keys-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const kp = await generateKeyPair();
  const s = newNodeSecrets(kp.key);
  writeNodeSecrets(dir, s);
  const file = path.join(dir, 'node.key');
  t.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
  t.match(readKeyFile(dir), { state: 'open', secrets: s });
  const key = newUnlockKey();
  t.match(key, /^SWMKEY-1-[A-Za-z0-9+/]{43}=$/);
  writeNodeSecrets(dir, s, key);
  const text = fs.readFileSync(file, 'utf8');
  t.notOk(text.includes('PRIVATE KEY') || text.includes(s.dek) || text.includes(kp.key.split('\n')[1]!), 'sealed: neither key readable');
  t.equal(readKeyFile(dir).state, 'locked');
  t.throws(() => unlockNodeSecrets(dir, newUnlockKey()), LockedError);
  t.throws(() => unlockNodeSecrets(dir, 'SWMKEY-1-short'), /malformed unlock key/);
  t.same(unlockNodeSecrets(dir, key), s);
});
