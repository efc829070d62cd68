// Authorization of 2377 peers over real TLS sockets: a server with our listener's options, clients
// with real certificates (valid, expired, another CA, a worker, a removed node, none).
import t from 'tap';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createCsr, createRootCA, generateKeyPair, issueNodeCert, parseNodeCert, type NodeRole, type RootCA } from '../../../control/ca/pki.js';
import { serverOptions, clientOptions, type NodeCredentials } from '../../../control/ca/tls.js';
import { authorize, identify, type AuthzContext, type Peer } from '../../../control/ca/authz.js';

async function creds(ca: RootCA, nodeId: string, role: NodeRole, clusterId: string, expiryMs = 3600_000, now = new Date()): Promise<NodeCredentials> {
  const kp = await generateKeyPair();
  const cert = await issueNodeCert(ca, await createCsr(kp, nodeId), { nodeId, role, clusterId }, expiryMs, now);
  return { caCert: ca.cert, cert, key: kp.key, info: parseNodeCert(cert) };
}

const ca = await createRootCA('c1');
const server = await creds(ca, 'srv', 'manager', 'c1');
const removedAt = new Date(Date.now() - 5000).toISOString();
const ctx: AuthzContext = { clusterId: 'c1', removed: (id) => (id === 'gone' ? { at: removedAt, until: '2100-01-01T00:00:00Z' } : undefined), storeRole: (id) => (id === 'demoted' ? 'worker' : undefined) };

/** Connects to a TLS server with our listener options; returns what the server made of the client. */
async function peerOf(client: tls.ConnectionOptions): Promise<Peer> {
  let got: Peer | undefined;
  const srv = tls.createServer(serverOptions(server), (s) => {
    got = identify(s, ctx);
    s.end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    const c = tls.connect({ host: '127.0.0.1', port, ...client });
    c.on('secureConnect', () => c.on('end', () => resolve()));
    c.on('error', reject);
    c.resume();
  });
  srv.close();
  return got!;
}

t.test('each kind of peer', async (t) => {
  const srvCheck = { ca: [ca.cert], checkServerIdentity: () => undefined, minVersion: 'TLSv1.2' as const };
  const mgr = await creds(ca, 'm1', 'manager', 'c1');
  const wrk = await creds(ca, 'w1', 'worker', 'c1');
  const p1 = await peerOf(clientOptions(mgr, { role: 'manager', display: 'srv' }));
  t.match(p1, { kind: 'node', info: { nodeId: 'm1', role: 'manager' } });
  t.same(authorize(p1, 'manager', ctx), { ok: true });
  const p2 = await peerOf(clientOptions(wrk, { role: 'manager', display: 'srv' }));
  t.same(authorize(p2, 'node', ctx), { ok: true });
  t.match(authorize(p2, 'manager', ctx), { ok: false, status: 403, reason: /w1 is a worker/ });
  const anon = await peerOf(srvCheck);
  t.same(anon, { kind: 'anonymous' });
  t.same(authorize(anon, 'anonymous', ctx), { ok: true });
  t.match(authorize(anon, 'node', ctx), { ok: false, status: 401 });
  const expired = await creds(ca, 'old', 'worker', 'c1', 10_000, new Date(Date.now() - 3600_000));
  const p3 = await peerOf({ ...srvCheck, key: expired.key, cert: expired.cert });
  t.match(p3, { kind: 'refused', reason: /old \(swarm-worker\) was refused: it has expired/ });
  t.match(authorize(p3, 'anonymous', ctx), { ok: false, status: 401 }, 'a refused certificate is not even anonymous');
  const foreignCa = await createRootCA('c1');
  const foreign = await creds(foreignCa, 'm2', 'manager', 'c1');
  t.match(await peerOf({ ...srvCheck, key: foreign.key, cert: foreign.cert }), { kind: 'refused', reason: /not issued by this cluster's root CA/ });
  const otherCluster = await creds(ca, 'x', 'manager', 'c2');
  t.match(await peerOf({ ...srvCheck, key: otherCluster.key, cert: otherCluster.cert }), { kind: 'refused', reason: /certificate for cluster c2/ });
  const gone = await creds(ca, 'gone', 'worker', 'c1', 3600_000, new Date(Date.now() - 60_000));
  t.match(await peerOf({ ...srvCheck, key: gone.key, cert: gone.cert }), { kind: 'refused', reason: /was removed from the cluster/ });
  // a certificate issued after the removal (the node joined again with a token) is accepted
  const back = await creds(ca, 'gone', 'worker', 'c1');
  t.match(await peerOf({ ...srvCheck, key: back.key, cert: back.cert }), { kind: 'node' });
  const demoted = await creds(ca, 'demoted', 'manager', 'c1');
  t.match(authorize(await peerOf({ ...srvCheck, key: demoted.key, cert: demoted.cert }), 'manager', ctx), { ok: false, reason: /no longer a manager/ });
});

t.test('clients check the server: another CA, the wrong role or node, old TLS versions fail', async (t) => {
  const wrk = await creds(ca, 'w1', 'worker', 'c1');
  const fail = async (client: tls.ConnectionOptions, serverCreds: NodeCredentials, re: RegExp, extra: tls.TlsOptions = {}): Promise<void> => {
    const srv = tls.createServer({ ...serverOptions(serverCreds), ...extra }, (s) => s.end());
    srv.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    const err = await new Promise<Error>((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port, ...client });
      c.on('secureConnect', () => resolve(new Error('connected')));
      c.on('error', resolve);
    });
    srv.close();
    t.match(err.message, re);
  };
  const impostorCa = await createRootCA('c1');
  await fail(clientOptions(wrk, { role: 'manager', display: 'x' }), await creds(impostorCa, 'srv', 'manager', 'c1'), /self.signed|unable to verify|issuer/i);
  await fail(clientOptions(wrk, { role: 'manager', display: 'x' }), await creds(ca, 'w9', 'worker', 'c1'), /is not a manager/);
  await fail(clientOptions(wrk, { nodeId: 'n7', display: 'x' }), server, /is srv, not n7/);
  await fail({ ...clientOptions(wrk, { display: 'x' }), minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, server, /version|protocol|alert/i);
});
