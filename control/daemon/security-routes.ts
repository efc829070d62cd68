// API of the PKI and of autolock. Remote: the root CA certificate (anonymous: a joining node pins
// it by the token's digest) and certificate renewal (any node, for itself). Local only: unlock,
// the unlock key, and turning autolock on or off.
import { z } from 'zod';
import { ApiError } from '../api/http.js';
import type { Daemon } from './daemon.js';
import { ManagerError } from '../manager/manager.js';
import { newUnlockKey } from '../ca/node-keys.js';

const RenewBody = z.object({ csr: z.string().min(1).max(16_384), nodeId: z.string().max(64).optional() }).strict();

export function registerSecurityRoutes(d: Daemon): void {
  const r = d.router;

  r.on(
    'GET',
    '/v1/ca/root',
    async () => {
      const caCert = d.sec.creds?.caCert;
      if (!caCert) throw new ApiError(503, 'no-ca', 'this node has no root CA certificate (is it in a cluster, and unlocked?)');
      return { caCert };
    },
    { access: 'anonymous' },
  );

  r.on(
    'POST',
    '/v1/ca/renew',
    async (req) => {
      const body = RenewBody.parse(req.body ?? {});
      if (!req.peer) throw new ApiError(401, 'unauthenticated', 'renewal needs the node\'s current certificate');
      // a node renews for itself; a manager may pass on another node's request (forwarding to the
      // leader), and the CSR must then name that node (checked when signing)
      const nodeId = req.peer.role === 'manager' && body.nodeId ? body.nodeId : req.peer.nodeId;
      return d.onLeader('POST', req.path, { csr: body.csr, nodeId }, () => d.renewFor(nodeId, body.csr), 10_000);
    },
    { access: 'node' },
  );

  r.on('POST', '/v1/swarm/unlock', async (req) => {
    const body = z.object({ key: z.string().min(1).max(200) }).strict().parse(req.body ?? {});
    return d.unlock(body.key);
  });

  r.on('GET', '/v1/swarm/unlock-key', async () => {
    const m = d.requireManager();
    await m.linearizableRead().catch((e: unknown) => Promise.reject(toApi(e)));
    const key = d.secrets().unlockKey;
    if (!key) throw new ApiError(400, 'no-autolock', 'autolock is off, so there is no unlock key: turn it on with `meshctl swarm update --autolock=true`');
    return { unlockKey: key };
  });

  r.on('POST', '/v1/swarm/unlock-key/rotate', async () => {
    if (!d.secrets().unlockKey) throw new ApiError(400, 'no-autolock', 'autolock is off: there is no unlock key to rotate');
    const key = newUnlockKey();
    await setUnlockKey(d, key);
    return { unlockKey: key };
  });

  r.on('POST', '/v1/swarm/autolock', async (req) => {
    const body = z.object({ enable: z.boolean() }).strict().parse(req.body ?? {});
    const had = d.secrets().unlockKey;
    if (body.enable === Boolean(had)) return had ? { autolock: true, unlockKey: had } : { autolock: false };
    const key = body.enable ? newUnlockKey() : undefined;
    await setUnlockKey(d, key);
    return key ? { autolock: true, unlockKey: key } : { autolock: false };
  });
}

async function setUnlockKey(d: Daemon, key: string | undefined): Promise<void> {
  await d
    .updateCluster((c) => {
      const { unlockKey: _old, ...rest } = c.secrets!;
      return { ...c, secrets: key ? { ...rest, unlockKey: key } : rest };
    })
    .catch((e: unknown) => Promise.reject(toApi(e)));
  d.log(key ? 'autolock: on (the unlock key changed); managers seal their keys with it' : 'autolock: off');
}

function toApi(e: unknown): unknown {
  if (e instanceof ManagerError) return new ApiError(e.code === 'no-quorum' ? 503 : 400, e.code, e.message);
  return e;
}
