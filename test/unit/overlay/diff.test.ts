import t from 'tap';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { desiredState, diff, simulate, vethName, type NodeState, type NsState } from '../../../dataplane/overlay/index.js';
import { arbActual, arbInput } from './arb.js';

/** The part of a state the reconciler owns, given the desired state: task namespaces only for the
 *  interfaces desired there. */
function managed(s: NodeState, desired: NodeState): NodeState {
  const out: NodeState = { netns: {}, hostLinks: [...s.hostLinks] };
  for (const [ns, n] of Object.entries(s.netns)) {
    const d = desired.netns[ns];
    if (n.owned) out.netns[ns] = n;
    else if (d) {
      const links: NsState['links'] = {};
      for (const name of Object.keys(d.links)) if (n.links[name]) links[name] = n.links[name]!;
      out.netns[ns] = { ...n, links };
    }
  }
  return JSON.parse(JSON.stringify(out)) as NodeState;
}

/** Task namespaces exist whether or not we have configured them (the runtime made them). */
function withTaskNs(actual: NodeState, desired: NodeState): NodeState {
  const a = structuredClone(actual);
  for (const [ns, d] of Object.entries(desired.netns)) if (!d.owned && !a.netns[ns]) a.netns[ns] = { owned: false, links: {}, fdb: {}, neigh: {} };
  return a;
}

t.test('diff of a state with itself is empty', async (t) => {
  fc.assert(fc.property(arbInput, (input) => {
    const d = desiredState(input);
    assert.deepEqual(diff(d, d), []);
  }), { numRuns: 300 });
  t.pass('300 random states');
});

t.test('applying the diff reaches the desired state, and then there is nothing left to do', async (t) => {
  fc.assert(fc.property(arbActual, arbInput, (actual0, input) => {
    const desired = desiredState(input);
    const actual = withTaskNs(actual0, desired);
    const steps = diff(actual, desired);
    const after = simulate(actual, steps); // throws on EEXIST / missing objects: steps must be well ordered
    assert.deepEqual(managed(after, desired), managed(desired, desired));
    assert.deepEqual(diff(after, desired), []);
  }), { numRuns: 1000 });
  t.pass('1000 random (actual, desired) pairs');
});

t.test('nothing desired: every sandbox and leftover goes', async (t) => {
  fc.assert(fc.property(arbActual, (actual0) => {
    const desired = desiredState({ node: { underlayAddress: '192.0.2.1', underlayMtu: 1500, prefix: 'msh' }, networks: [], attachments: [], remotes: [] });
    const after = simulate(actual0, diff(actual0, desired));
    assert.deepEqual(Object.values(after.netns).filter((n) => n.owned), [], 'no sandbox left when nothing is desired');
    assert.deepEqual(after.hostLinks, []);
  }), { numRuns: 300 });
  t.pass('300 random states torn down');
});

t.test('examples: what the steps are', async (t) => {
  const input = {
    node: { underlayAddress: '192.0.2.1', underlayMtu: 1500, prefix: 'msh' },
    networks: [{ id: 'n1', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1' }],
    attachments: [{ taskId: 't1', networkId: 'n1', netns: 'task1', ifname: 'eth0', cidr: '10.0.1.5/24' }],
    remotes: [{ networkId: 'n1', ip: '10.0.1.9', mac: '02:42:0a:00:01:09', vtep: '192.0.2.2' }],
  };
  const d = desiredState(input);
  const v = vethName('t1', 'eth0');
  const fresh = diff({ netns: { task1: { owned: false, links: {}, fdb: {}, neigh: {} } }, hostLinks: [] }, d);
  t.same(fresh.map((s) => s.op), ['add-netns', 'add-bridge', 'add-vxlan', 'add-veth', 'set-link', 'set-link', 'set-link', 'set-link', 'add-addr', 'add-addr', 'add-fdb', 'add-neigh']);
  t.match(fresh.find((s) => s.op === 'add-veth'), { netns: 'msh-ov-4097', name: v, peerNetns: 'task1', peerName: 'eth0', peerMac: '02:42:0a:00:01:05', mtu: 1450 });

  // a gossip removal is exactly two steps
  const gone = desiredState({ ...input, remotes: [] });
  t.same(diff(d, gone), [
    { op: 'del-fdb', netns: 'msh-ov-4097', dev: 'vx-4097', mac: '02:42:0a:00:01:09', dst: '192.0.2.2' },
    { op: 'del-neigh', netns: 'msh-ov-4097', dev: 'vx-4097', ip: '10.0.1.9', mac: '02:42:0a:00:01:09' },
  ]);
  // a moved endpoint (new VTEP) is a replace, not delete + add
  const moved = desiredState({ ...input, remotes: [{ ...input.remotes[0]!, vtep: '192.0.2.3' }] });
  t.same(diff(d, moved).map((s) => s.op), ['add-fdb']);

  // a vxlan device with learning on is replaced, and its entries re-programmed
  const bad = structuredClone(d);
  bad.netns['msh-ov-4097']!.links['vx-4097']!.vxlan!.learning = true;
  t.same(diff(bad, d).map((s) => s.op), ['del-link', 'add-vxlan', 'set-link', 'add-fdb', 'add-neigh']);

  // a foreign eth0 in the task namespace (not the peer of our veth) is removed, the pair rebuilt
  const foreign = structuredClone(d);
  delete foreign.netns['msh-ov-4097']!.links[v];
  delete foreign.netns['task1']!.links['eth0']!.peer;
  t.same(diff(foreign, d).map((s) => s.op), ['del-link', 'add-veth', 'set-link', 'set-link', 'add-addr']);

  // a wrong MAC on the task side: the pair is rebuilt from the sandbox side only (the task end goes with it)
  const mac = structuredClone(d);
  mac.netns['task1']!.links['eth0']!.mac = '02:42:00:00:00:01';
  const ms = diff(mac, d);
  t.same(ms.filter((s) => s.op === 'del-link'), [{ op: 'del-link', netns: 'msh-ov-4097', name: v }]);

  // last task leaves: the sandbox goes, nothing else to do
  t.same(diff(d, desiredState({ ...input, attachments: [] })), [{ op: 'del-netns', netns: 'msh-ov-4097' }]);
});
