import t from 'tap';
import { SilenceClock } from '../../../control/daemon/liveness.js';

// The leader's monitor ticks every 250 ms; a node is down after 3000 ms of silence.
const TICK = 250;
const DEADLINE = 3000;

t.test('a node that stops sending is counted silent at wall-clock pace while the monitor ticks', async (t) => {
  const c = new SilenceClock(TICK * 4);
  let now = 1_000_000;
  c.tick(now, ['a', 'b']);
  c.heard('a');
  c.heard('b');
  for (let i = 0; i < 13; i++) {
    now += TICK;
    c.tick(now, ['a', 'b']);
    c.heard('b'); // b keeps sending
  }
  t.equal(c.silentFor('a'), 13 * TICK, 'a: every tick counted');
  t.ok(c.silentFor('a') > DEADLINE, 'a is past the deadline: it would be marked down');
  t.equal(c.silentFor('b'), 0, 'b is not silent');
});

t.test('a stall of the leader itself is not charged to the nodes', async (t) => {
  // The leader's event loop is blocked for 10 s; the nodes' heartbeats wait in its sockets. When it
  // resumes, the monitor's timer runs before those sockets are read.
  const c = new SilenceClock(TICK * 4);
  let now = 5_000;
  c.tick(now, ['a']);
  c.heard('a');
  now += 10_000;
  c.tick(now, ['a']);
  t.equal(c.silentFor('a'), TICK * 4, 'the stall counts as one capped step');
  t.ok(c.silentFor('a') <= DEADLINE, 'a is not marked down for the leader\'s pause');
  c.heard('a'); // the queued heartbeat is read right after
  now += TICK;
  c.tick(now, ['a']);
  t.equal(c.silentFor('a'), TICK);
});

t.test('a dead node is still found after a stall, a tick later per capped step', async (t) => {
  const c = new SilenceClock(TICK * 4);
  let now = 0;
  c.tick(now, ['a']);
  c.heard('a');
  now += 60_000; // a long stall, and a is dead meanwhile
  c.tick(now, ['a']);
  let ticks = 0;
  while (c.silentFor('a') <= DEADLINE) {
    now += TICK;
    c.tick(now, ['a']);
    ticks++;
  }
  t.equal(ticks, (DEADLINE - TICK * 4) / TICK + 1, 'down within the deadline of monitor time after the stall');
});

t.test('nodes that leave are forgotten; a new leader starts every node afresh', async (t) => {
  const c = new SilenceClock(TICK * 4);
  c.tick(0, ['a', 'b']);
  c.tick(500, ['a', 'b']);
  t.equal(c.silentFor('b'), 500);
  c.tick(700, ['a']);
  t.equal(c.silentFor('b'), 0, 'b is no longer listed: forgotten');
  t.equal(c.silentFor('a'), 700);
  c.reset();
  c.tick(10_000, ['a']);
  t.equal(c.silentFor('a'), 0, 'the first tick of a new leader counts nothing');
});
