// Rule-by-rule tests of the Raft state machine on a tiny synchronous network.
import t from 'tap';
import { Net, text } from './net.js';
import { RawNode } from '../../../control/raft/node.js';
import { MemoryStorage } from '../../../control/raft/storage.js';
import { seededRandom } from '../../../control/raft/rand.js';
import { msg, type Message } from '../../../control/raft/types.js';

const three = (): Net => new Net(['a', 'b', 'c']);

t.test('defaults: heartbeat 100 ms and election 1000 ms as ticks of the configured length', async (t) => {
  const r = new RawNode({ id: 'a', storage: new MemoryStorage(), random: seededRandom(1) }).raft;
  t.equal(r.cfg.heartbeatTick, 1);
  t.equal(r.cfg.electionTick, 10);
  const r2 = new RawNode({ id: 'a', storage: new MemoryStorage(), random: seededRandom(1), tickMs: 10 }).raft;
  t.equal(r2.cfg.heartbeatTick, 10);
  t.equal(r2.cfg.electionTick, 100);
});

t.test('randomized election timeout comes from the injected PRNG, in [election, 2*election)', async (t) => {
  const firstElection = (seed: number): number => {
    const net = new Net(['a', 'b', 'c'], { random: seededRandom(seed) });
    for (let i = 1; i <= 40; i++) {
      net.tick('a');
      if (net.state('a') !== 'follower') return i;
    }
    return -1;
  };
  const seen = new Set<number>();
  for (let s = 0; s < 30; s++) {
    const ticks = firstElection(s);
    t.ok(ticks >= 10 && ticks < 20, `seed ${s}: campaign after ${ticks} ticks`);
    t.equal(firstElection(s), ticks, 'same seed, same timeout');
    seen.add(ticks);
  }
  t.ok(seen.size > 3, 'timeouts vary with the seed');
});

t.test('election: a candidate with votes from a majority leads; one leader per term', async (t) => {
  const net = three();
  net.campaign('a');
  t.same(net.leaders(), ['a']);
  t.equal(net.node('a').rn.raft.term, 2);
  t.equal(net.node('b').rn.raft.lead, 'a');
  // the empty entry of the new term commits everywhere
  t.equal(net.node('c').rn.raft.log.committed, 4);
});

t.test('votes go only to candidates whose log is at least as up to date', async (t) => {
  const net = three();
  net.campaign('a');
  net.filter = (m) => m.to !== 'c';
  net.propose('a', 'x'); // c misses it
  net.filter = () => true;
  // c campaigns: a and b refuse (pre-vote), c stays follower, term unchanged everywhere
  const term = net.node('a').rn.raft.term;
  net.node('a').rn.raft.becomeFollower(term, ''); // drop the lease so the request is considered
  net.node('b').rn.raft.becomeFollower(term, '');
  net.campaign('c');
  t.not(net.state('c'), 'leader');
  t.equal(net.node('c').rn.raft.term, term, 'pre-vote failed: no term bump');
});

t.test('pre-vote: a partitioned node rejoining does not disrupt the leader', async (t) => {
  const net = three();
  net.campaign('a');
  net.filter = (m) => m.to !== 'c' && m.from !== 'c';
  for (let i = 0; i < 100; i++) {
    net.tick('a');
    net.tick('b');
    net.tick('c');
    net.deliverAll();
  }
  const term = net.node('a').rn.raft.term;
  t.equal(net.node('c').rn.raft.term, term, 'isolated node never bumped its term');
  net.filter = () => true;
  net.tick('a');
  net.deliverAll();
  t.same(net.leaders(), ['a']);
  t.equal(net.node('a').rn.raft.term, term);
});

t.test('without pre-vote an isolated node bumps its term; CheckQuorum lease still protects the leader', async (t) => {
  const net = new Net(['a', 'b', 'c'], { preVote: false });
  net.campaign('a');
  net.filter = (m) => m.to !== 'c' && m.from !== 'c';
  for (let i = 0; i < 50; i++) {
    for (const id of ['a', 'b', 'c']) net.tick(id);
    net.deliverAll();
  }
  t.ok(net.node('c').rn.raft.term > net.node('a').rn.raft.term, 'c campaigned in isolation');
  net.filter = () => true;
  // c's vote requests hit followers in lease: ignored. a's heartbeat to c gets a higher-term reply,
  // so a steps down and a new election happens: at most one leader per term, and one emerges.
  for (let i = 0; i < 60; i++) {
    for (const id of ['a', 'b', 'c']) net.tick(id);
    net.deliverAll();
  }
  t.equal(net.leaders().length, 1);
});

t.test('CheckQuorum: a leader cut off from the majority steps down', async (t) => {
  const net = three();
  net.campaign('a');
  net.filter = (m) => m.from !== 'a' && m.to !== 'a';
  // the election's replies count as activity for the first round: down within two election timeouts
  for (let i = 0; i < 20; i++) net.tick('a');
  t.equal(net.state('a'), 'follower');
});

t.test('commit by majority counts only entries of the current term (Figure 8)', async (t) => {
  // one entry per append, so the old-term entry and the new leader's entry travel separately
  const net = new Net(['a', 'b', 'c'], { maxSizePerMsg: 1 });
  const unlead = (): void => {
    for (const id of ['a', 'b', 'c']) net.node(id).rn.raft.becomeFollower(net.node(id).rn.raft.term, '');
  };
  net.campaign('a');
  net.filter = () => false;
  net.propose('a', 'old'); // term 2, only on a
  const ra = net.node('a').rn.raft;
  const oldIndex = ra.log.lastIndex();
  // b leads term 3 with c's vote; none of its entries leave b
  unlead();
  net.filter = (m) => ((m.from === 'b' && m.to === 'c') || (m.from === 'c' && m.to === 'b')) && m.type !== 'app';
  net.campaign('b');
  t.equal(net.state('b'), 'leader');
  // a leads term 4 with c; c receives 'old' but not a's term-4 entry
  unlead();
  const rc = net.node('c').rn.raft;
  const carriesNew = (m: Message): boolean => m.type === 'app' && m.entries.some((e) => e.term === 4);
  // appends carrying the term-4 entry get through only while c would reject them anyway
  net.filter = (m) => ((m.from === 'a' && m.to === 'c') || (m.from === 'c' && m.to === 'a')) && !(carriesNew(m) && rc.log.lastIndex() >= oldIndex);
  net.campaign('a');
  if (net.state('a') !== 'leader') net.campaign('a'); // first pre-vote only taught a the term
  t.equal(net.state('a'), 'leader');
  for (let i = 0; i < 3; i++) {
    net.tick('a');
    net.deliverAll();
  }
  t.equal(net.node('c').rn.raft.log.term(oldIndex), 2, 'c holds the old entry: a majority has it');
  t.ok(ra.log.committed < oldIndex, `not committed by counting old-term replicas (commit ${ra.log.committed} < ${oldIndex})`);
  net.filter = () => true;
  net.tick('a');
  net.deliverAll();
  t.ok(ra.log.committed > oldIndex, 'committed once an entry of the current term is on a majority');
});

t.test('fast back-off: a follower with a long divergent tail is repaired in few round trips', async (t) => {
  const net = three();
  net.campaign('a');
  // c leads term 3 alone in a minority and appends 50 entries nobody else gets
  net.filter = (m) => m.to === 'c' || m.from === 'c' ? false : true;
  const rc = net.node('c').rn.raft;
  rc.becomeFollower(rc.term + 1, '');
  net.filter = (m) => m.from === 'c' && m.type === 'preVote' ? false : m.to !== 'c' && m.from !== 'c';
  // force c into leadership of its own term by granting itself: emulate with a direct log append
  for (let i = 0; i < 50; i++) rc.log.append([{ index: rc.log.lastIndex() + 1, term: rc.term, type: 'normal', data: new Uint8Array([1]) }]);
  net.process('c');
  // meanwhile a commits 50 entries of its own
  net.filter = (m) => m.to !== 'c' && m.from !== 'c';
  for (let i = 0; i < 50; i++) net.propose('a', `v${i}`);
  // heal: count the rejected appends needed to repair c
  net.filter = () => true;
  net.node('c').rn.raft.becomeFollower(net.node('a').rn.raft.term, 'a');
  net.sent = [];
  net.tick('a');
  net.deliverAll();
  const rejects = net.sent.filter((m) => m.type === 'appResp' && m.reject).length;
  t.ok(rejects <= 3, `repaired with ${rejects} rejections (not ~50)`);
  t.equal(rc.log.lastIndex(), net.node('a').rn.raft.log.lastIndex());
  t.equal(rc.log.term(rc.log.lastIndex()), net.node('a').rn.raft.term);
});

t.test('snapshot: a follower behind the compaction point gets the snapshot, then entries', async (t) => {
  const net = three();
  net.campaign('a');
  net.filter = (m) => m.to !== 'c';
  for (let i = 0; i < 20; i++) net.propose('a', `v${i}`);
  const a = net.node('a');
  const applied = a.rn.raft.log.applied;
  a.disk.createSnapshot(applied, a.rn.raft.confState(), new TextEncoder().encode('STATE'));
  a.disk.compact(applied);
  net.filter = () => true;
  net.sent = [];
  net.tick('a');
  net.deliverAll();
  t.ok(net.sent.some((m) => m.type === 'snap' && m.to === 'c'), 'snapshot sent');
  const c = net.node('c');
  t.equal(c.disk.snapshot().meta.index, applied);
  t.equal(text(c.disk.snapshot().data), 'STATE');
  net.propose('a', 'after');
  t.equal(text(c.applied[c.applied.length - 1]!), 'after', 'replication resumes after the snapshot');
});

t.test('a lost snapshot is retried', async (t) => {
  const net = three();
  net.campaign('a');
  net.filter = (m) => m.to !== 'c';
  for (let i = 0; i < 10; i++) net.propose('a', `v${i}`);
  const a = net.node('a');
  a.disk.createSnapshot(a.rn.raft.log.applied, a.rn.raft.confState(), new Uint8Array(0));
  a.disk.compact(a.rn.raft.log.applied);
  let drops = 0;
  net.filter = (m) => !(m.type === 'snap' && drops++ === 0);
  for (let i = 0; i < 25; i++) {
    net.tick('a');
    net.deliverAll();
  }
  t.equal(drops > 1, true, 'sent again after the first was lost');
  t.equal(net.node('c').rn.raft.log.committed, a.rn.raft.log.committed);
});

t.test('membership: learners replicate but do not vote; promotion waits until caught up', async (t) => {
  const net = three();
  net.campaign('a');
  for (let i = 0; i < 5; i++) net.propose('a', `v${i}`);
  const a = net.node('a').rn;
  net.add('d', null);
  net.filter = (m) => m.to !== 'd'; // d is slow
  t.ok(a.proposeConfChange({ type: 'addLearner', node: 'd' }));
  net.process('a');
  net.deliverAll();
  t.same(a.raft.confState(), { voters: ['a', 'b', 'c'], learners: ['d'] });
  t.notOk(a.proposeConfChange({ type: 'addVoter', node: 'd' }), 'not caught up: promotion refused');
  net.filter = () => true;
  net.tick('a');
  net.deliverAll();
  t.equal(net.node('d').rn.raft.log.lastIndex(), a.raft.log.lastIndex(), 'learner caught up');
  t.same(net.node('d').rn.raft.confState().learners, ['d']);
  // learner never campaigns
  net.tick('d', 50);
  t.equal(net.state('d'), 'follower');
  t.ok(a.proposeConfChange({ type: 'addVoter', node: 'd' }), 'caught up: promotion accepted');
  net.process('a');
  net.deliverAll();
  net.tick('a');
  net.deliverAll();
  t.same(a.raft.confState(), { voters: ['a', 'b', 'c', 'd'], learners: [] });
});

t.test('membership: a learner added after the last compaction installs the older snapshot and catches up', async (t) => {
  // The leader's latest snapshot predates the learner's own addLearner entry, so its config does not
  // list the learner, and the entries the learner needs before it are compacted away. No new writes
  // arrive, so no newer snapshot is ever taken: the learner must accept this one, then the entries.
  const net = three();
  net.campaign('a');
  for (let i = 0; i < 10; i++) net.propose('a', `v${i}`);
  const a = net.node('a');
  const applied = a.rn.raft.log.applied;
  a.disk.createSnapshot(applied, a.rn.raft.confState(), new TextEncoder().encode('STATE'));
  a.disk.compact(applied);
  net.add('d', null);
  net.sent = [];
  t.ok(a.rn.proposeConfChange({ type: 'addLearner', node: 'd' }));
  net.process('a');
  net.deliverAll();
  t.same(a.rn.raft.confState().learners, ['d']);
  t.notOk(a.disk.snapshot().meta.conf.learners.includes('d'), "the leader's snapshot predates d");
  for (let i = 0; i < 30; i++) {
    net.tick('a');
    net.deliverAll();
  }
  const d = net.node('d');
  t.equal(net.sent.filter((m) => m.type === 'snap' && m.to === 'd').length, 1, 'one snapshot is enough');
  t.equal(d.disk.snapshot().meta.index, applied, 'd installed the snapshot');
  t.equal(text(d.disk.snapshot().data), 'STATE');
  t.equal(d.rn.raft.log.applied, a.rn.raft.log.committed, 'd applied everything after it');
  t.same(d.rn.raft.confState(), { voters: ['a', 'b', 'c'], learners: ['d'] }, 'its own addLearner put d in its config');
  t.equal(d.rn.raft.promotable(), false, 'a learner never campaigns');
  t.ok(a.rn.proposeConfChange({ type: 'addVoter', node: 'd' }), 'caught up: promotion accepted');
  net.process('a');
  net.deliverAll();
  net.tick('a');
  net.deliverAll();
  t.same(d.rn.raft.confState(), { voters: ['a', 'b', 'c', 'd'], learners: [] });
  t.equal(d.rn.raft.promotable(), true);
  net.propose('a', 'after');
  t.equal(text(d.applied[d.applied.length - 1]!), 'after', 'replication to d continues');
});

t.test('membership: one change at a time', async (t) => {
  const net = three();
  net.campaign('a');
  const a = net.node('a').rn;
  net.filter = () => false; // nothing commits
  t.ok(a.proposeConfChange({ type: 'addLearner', node: 'd' }));
  t.notOk(a.proposeConfChange({ type: 'addLearner', node: 'e' }), 'second change refused while first is unapplied');
});

t.test('membership: a removed leader steps down and the rest elect a new one', async (t) => {
  const net = three();
  net.campaign('a');
  const a = net.node('a').rn;
  t.ok(a.proposeConfChange({ type: 'remove', node: 'a' }));
  net.process('a');
  net.deliverAll();
  t.equal(net.state('a'), 'follower');
  for (let i = 0; i < 40 && net.leaders().length === 0; i++) {
    for (const id of ['a', 'b', 'c']) net.tick(id);
    net.deliverAll();
  }
  const l = net.leaders();
  t.equal(l.length, 1);
  t.not(l[0], 'a');
  t.same(net.node(l[0]!).rn.raft.confState().voters, ['b', 'c']);
});

t.test('leadership transfer: the target catches up, gets MsgTimeoutNow and wins at once', async (t) => {
  const net = three();
  net.campaign('a');
  net.filter = (m) => m.to !== 'c';
  net.propose('a', 'x');
  net.filter = () => true;
  const a = net.node('a').rn;
  t.ok(a.transferLeadership('c'));
  net.process('a');
  net.deliverAll();
  t.ok(net.sent.some((m) => m.type === 'timeoutNow' && m.to === 'c'));
  t.same(net.leaders(), ['c']);
  t.notOk(net.node('a').rn.propose(new Uint8Array([1])) && net.state('a') === 'leader');
});

t.test('leadership transfer: proposals are refused while it runs; it is abandoned after an election timeout', async (t) => {
  const net = three();
  net.campaign('a');
  net.filter = (m) => m.to !== 'c' && m.from !== 'c';
  const a = net.node('a').rn;
  a.transferLeadership('c');
  net.process('a');
  t.notOk(a.propose(new Uint8Array([1])), 'refused during transfer');
  for (let i = 0; i < 10; i++) {
    net.tick('a');
    net.tick('b');
    net.deliverAll();
  }
  t.equal(net.state('a'), 'leader');
  t.ok(a.propose(new Uint8Array([1])), 'accepted again after the transfer timed out');
});

t.test('ReadIndex: on the leader after a heartbeat quorum; on a follower via the leader', async (t) => {
  const net = three();
  net.campaign('a');
  net.propose('a', 'x');
  const a = net.node('a');
  a.rn.readIndex('r1');
  net.process('a');
  t.equal(a.reads.length, 0, 'not before the heartbeat round');
  net.deliverAll();
  t.same(a.reads, [{ index: a.rn.raft.log.committed, context: 'r1' }]);
  const b = net.node('b');
  b.rn.readIndex('r2');
  net.process('b');
  net.deliverAll();
  t.same(b.reads, [{ index: a.rn.raft.log.committed, context: 'r2' }]);
});

t.test('ReadIndex: a deposed leader cannot confirm reads', async (t) => {
  const net = three();
  net.campaign('a');
  net.filter = (m) => m.from !== 'a' && m.to !== 'a';
  const a = net.node('a');
  a.rn.readIndex('r');
  net.process('a');
  net.deliverAll();
  for (let i = 0; i < 15; i++) net.tick('a');
  t.same(a.reads, []);
});

t.test('ReadIndex waits for the new leader to commit an entry of its term', async (t) => {
  const net = three();
  net.filter = (m) => m.type !== 'app' && m.type !== 'appResp';
  net.campaign('a');
  const a = net.node('a').rn;
  const r = a.raft;
  t.equal(net.state('a'), 'leader');
  t.ok(r.log.term(r.log.committed) !== r.term, 'no entry of this term committed yet');
  a.readIndex('early');
  net.process('a');
  net.deliverAll();
  t.same(net.node('a').reads, [], 'held back');
  t.equal(r.pendingReadCount(), 1);
  net.filter = () => true;
  net.tick('a');
  net.deliverAll();
  t.same(net.node('a').reads.map((x) => x.context), ['early']);
});

t.test('stale messages from old terms are ignored; local types from the wire are ignored', async (t) => {
  const net = three();
  net.campaign('a');
  const b = net.node('b').rn;
  const before = b.raft.log.lastIndex();
  b.step(msg({ type: 'app', from: 'c', to: 'b', term: 1, index: before, logTerm: 1, entries: [{ index: before + 1, term: 1, type: 'normal', data: new Uint8Array([9]) }] }));
  t.equal(b.raft.log.lastIndex(), before);
  b.step(msg({ type: 'hup', from: 'c', to: 'b' }));
  t.equal(b.raft.state, 'follower');
});
