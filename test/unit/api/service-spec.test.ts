import t from 'tap';
import { normalizeServiceSpec, describeSpecError } from '../../../control/api/service-spec.js';
import fc from 'fast-check';
import { formatDuration, parseBytes, parseCpus, parseDuration, parseNetwork, parsePublish, FlagError } from '../../../control/cli/service-flags.js';
import { ZodError } from 'zod';

function specError(input: unknown): string {
  try {
    normalizeServiceSpec(input);
  } catch (e) {
    if (e instanceof ZodError) return describeSpecError(e);
    throw e;
  }
  return 'no error';
}

t.test('defaults are Swarm\'s', async (t) => {
  const s = normalizeServiceSpec({ name: 'web', task: { command: ['x'] } });
  t.equal(s.mode, 'replicated');
  t.equal(s.replicas, 1);
  t.same(s.task.restart, { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 });
  t.same(s.update, { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0, order: 'stop-first' });
  t.same(s.endpoint, { mode: 'vip', ports: [] });
  t.equal(s.task.runtime, 'netns');
  t.equal(normalizeServiceSpec({ name: 'db', task: { image: 'sha256:abc' } }).task.runtime, 'docker');
  t.equal(normalizeServiceSpec({ name: 'g', mode: 'global', task: { command: ['x'] } }).replicas, 0);
});

t.test('bad specs name the field and what is allowed', async (t) => {
  t.match(specError({ name: 'web_x', task: { command: ['x'] } }), /^name: service names are/);
  t.match(specError({ name: 'w', mode: 'global', replicas: 2, task: { command: ['x'] } }), /^replicas: replicas cannot be used with global mode/);
  t.match(specError({ name: 'w', task: {} }), /task\.command: the netns runtime needs a command/);
  t.match(specError({ name: 'w', task: { runtime: 'docker' } }), /task\.image: the docker runtime needs an image/);
  t.match(specError({ name: 'w', task: { command: ['x'], placement: { constraints: ['zone=a'] } } }), /task\.placement\.constraints\.0: constraints look like/);
  t.match(specError({ name: 'w', task: { command: ['x'] }, endpoint: { ports: [{ published: 80, target: 80 }, { published: 80, target: 81 }] } }), /endpoint\.ports\.1: port 80\/tcp is published twice/);
  t.match(specError({ name: 'w', task: { command: ['x'] }, endpoint: { mode: 'dnsrr', ports: [{ published: 80, target: 80 }] } }), /dnsrr services cannot publish ingress ports/);
  t.match(specError({ name: 'w', task: { command: ['x'] }, replicas: -1 }), /^replicas:/);
  t.match(specError({ name: 'w', task: { command: ['x'] }, bogus: 1 }), /bogus|Unrecognized/);
  t.match(specError({ name: 'w', task: { command: ['x'] }, networks: [{ target: 'a' }, { target: 'a' }] }), /network a is attached twice/);
});

t.test('flags', async (t) => {
  t.same(parsePublish('8080:80'), { published: 8080, target: 80, protocol: 'tcp', mode: 'ingress' });
  t.same(parsePublish('53:53/udp'), { published: 53, target: 53, protocol: 'udp', mode: 'ingress' });
  t.same(parsePublish('published=8080,target=80,mode=host'), { published: 8080, target: 80, protocol: 'tcp', mode: 'host' });
  t.throws(() => parsePublish('80'), FlagError);
  t.throws(() => parsePublish('70000:80'), /published port must be 1-65535/);
  t.throws(() => parsePublish('published=1,target=2,mode=x'), /mode must be ingress or host/);
  t.throws(() => parsePublish('published=1,target=2,foo=3'), /unknown key "foo"/);
  t.same(parseNetwork('app'), { target: 'app', aliases: [] });
  t.same(parseNetwork('name=app,alias=db,alias=cache'), { target: 'app', aliases: ['db', 'cache'] });
  t.throws(() => parseNetwork('alias=db'), /needs name=/);
  t.equal(parseDuration('1m30s', '--update-delay'), 90_000);
  t.equal(parseDuration('500ms', '--x'), 500);
  t.equal(parseDuration('0', '--x'), 0);
  t.throws(() => parseDuration('5', '--update-delay'), /--update-delay 5: use a duration/);
  t.throws(() => parseDuration('5sx', '--x'), FlagError);
  t.equal(parseBytes('512M', '--reserve-memory'), 512 * 1024 * 1024);
  t.equal(parseBytes('1g', '--x'), 1024 ** 3);
  t.throws(() => parseBytes('lots', '--reserve-memory'), /use a size/);
  t.equal(parseCpus('0.5', '--reserve-cpu'), 500_000_000);
  t.throws(() => parseCpus('-1', '--reserve-cpu'), FlagError);
});

t.test('formatDuration writes what parseDuration reads back', async (t) => {
  t.equal(formatDuration(5000), '5s');
  t.equal(formatDuration(90_000), '1m30s');
  t.equal(formatDuration(12 * 3_600_000), '12h');
  t.equal(formatDuration(1250), '1s250ms');
  t.equal(formatDuration(0), '0s');
  fc.assert(fc.property(fc.integer({ min: 0, max: 10 * 365 * 24 * 3_600_000 }), (ms) => parseDuration(formatDuration(ms), '--x') === ms));
});
