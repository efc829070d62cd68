// The probe's pure parts: percentiles, target parsing, reply parsing, reports and verdicts.
import t from 'tap';
import fc from 'fast-check';
import { percentile, summarizeLatency, countBy, evenness } from '../../probe/stats.js';
import { parseTarget, parseTargets, TargetError } from '../../probe/targets.js';
import { parseHttpReply, parseUdpReply, UNKNOWN_REPLICA } from '../../probe/reply.js';
import { buildReport, formatReport, judge, summarizeTarget } from '../../probe/report.js';
import type { Attempt } from '../../probe/clients.js';

t.test('nearest-rank percentiles', async (t) => {
  const s = Array.from({ length: 100 }, (_, i) => i + 1);
  t.equal(percentile(s, 50), 50);
  t.equal(percentile(s, 99), 99);
  t.equal(percentile(s, 100), 100);
  t.equal(percentile(s, 0), 1);
  t.equal(percentile([7], 99), 7);
  t.ok(Number.isNaN(percentile([], 50)));
  t.same(summarizeLatency([3, 1, 2]), { count: 3, min: 1, p50: 2, p90: 3, p99: 3, max: 3, mean: 2 });
  t.equal(summarizeLatency([]), null);
  // Every percentile is a measured sample, monotone in p, between min and max.
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 100 }), (xs, p) => {
      const s = [...xs].sort((a, b) => a - b);
      const v = percentile(s, p);
      return s.includes(v) && v >= s[0]! && v <= s[s.length - 1]! && percentile(s, p - 1) <= v;
    }),
  );
});

t.test('distribution and evenness', async (t) => {
  t.same(countBy(['b', 'a', 'b']), { a: 1, b: 2 });
  t.same(Object.keys(countBy(['z', 'a', 'm'])), ['a', 'm', 'z'], 'keys sorted');
  t.equal(evenness({ a: 5, b: 5 }), 1);
  t.equal(evenness({ a: 2, b: 8 }), 0.25);
  t.equal(evenness({ a: 5, b: 5 }, 3), 0, 'a replica that never answered makes it uneven');
  t.equal(evenness({}), 0);
});

t.test('targets', async (t) => {
  t.same(parseTarget('10.0.0.1:80'), { name: '10.0.0.1:80', host: '10.0.0.1', port: 80 });
  t.same(parseTarget('m1=192.168.56.11', 8080), { name: 'm1', host: '192.168.56.11', port: 8080 });
  t.same(parseTarget('m1=192.168.56.11:9', 8080), { name: 'm1', host: '192.168.56.11', port: 9 }, 'own port wins');
  t.same(parseTarget('[::1]:80'), { name: '[::1]:80', host: '::1', port: 80 });
  t.same(parseTarget('node-a.example', 1), { name: 'node-a.example:1', host: 'node-a.example', port: 1 });
  t.throws(() => parseTarget('10.0.0.1'), TargetError, 'no port at all');
  t.throws(() => parseTarget('10.0.0.1:0'), /1-65535/);
  t.throws(() => parseTarget('10.0.0.1:70000'), /1-65535/);
  t.throws(() => parseTarget('a b'), /NAME=/);
  t.same(parseTargets(['a=1.1.1.1,b=2.2.2.2', ' c=3.3.3.3 '], 5).map((x) => x.name), ['a', 'b', 'c']);
  t.throws(() => parseTargets(['', ' '], 5), /no targets/);
});

t.test('replies of the built-in workload', async (t) => {
  t.same(parseHttpReply('{"task":"web.1.abc","ip":"10.0.0.5","remote":"198.18.200.1","port":80}\n'), { replica: 'web.1.abc', ip: '10.0.0.5', remote: '198.18.200.1' });
  t.same(parseHttpReply('<html>hello</html>'), { replica: UNKNOWN_REPLICA });
  t.same(parseHttpReply('{"task":""}'), { replica: UNKNOWN_REPLICA });
  t.same(parseHttpReply('[1]'), { replica: UNKNOWN_REPLICA });
  t.same(parseUdpReply('{"task":"u.1","echo":"n1"}', 'n1'), { replica: 'u.1' });
  t.match(parseUdpReply('{"task":"u.1","echo":"other"}', 'n1'), { mismatch: /not our/ }, 'someone else\'s answer is not ours');
  t.same(parseUdpReply('n1', 'n1'), { replica: UNKNOWN_REPLICA }, 'a plain echo server');
  t.match(parseUdpReply('junk', 'n1'), { mismatch: /does not echo/ });
});

const ok = (replica: string, ms: number): Attempt => ({ ok: true, ms, replica: { replica } });
const bad = (error: string): Attempt => ({ ok: false, ms: 2000, error });

t.test('reports and verdicts', async (t) => {
  const a = { name: 'n1', host: '198.18.200.11', port: 8080 };
  const b = { name: 'n2', host: '198.18.200.12', port: 8080 };
  const r1 = summarizeTarget(a, 'http', [ok('web.1', 1), ok('web.2', 3), ok('web.1', 2), bad('refused')]);
  t.equal(r1.ok, 3);
  t.equal(r1.successRate, 0.75);
  t.same(r1.replicas, { 'web.1': 2, 'web.2': 1 });
  t.same(r1.errors, { refused: 1 });
  t.equal(r1.latencyMs?.max, 3, 'failed attempts do not count in latency');
  t.notOk(judge(r1, { minSuccess: 1, minReplicas: 0 }).pass);
  t.match(judge(r1, { minSuccess: 1, minReplicas: 0 }).reasons[0], /3\/4 answered.*refused x1/);
  t.ok(judge(r1, { minSuccess: 0.75, minReplicas: 2 }).pass);
  t.match(judge(r1, { minSuccess: 0.5, minReplicas: 3 }).reasons, [/2 replica\(s\) answered, need 3/]);
  const tcp = summarizeTarget(a, 'tcp', [{ ok: true, ms: 1 }]);
  t.ok(judge(tcp, { minSuccess: 1, minReplicas: 3 }).pass, 'tcp cannot name replicas: not judged on them');
  t.notOk(judge(summarizeTarget(a, 'http', []), { minSuccess: 0, minReplicas: 0 }).pass, 'no attempts is not a pass');

  const rep = buildReport('http', { minSuccess: 1, minReplicas: 2 }, [
    { target: a, attempts: [ok('web.1', 1), ok('web.2', 1)] },
    { target: b, attempts: [ok('web.1', 5), bad('timeout')] },
  ], 1234);
  t.equal(rep.overall.attempts, 4);
  t.equal(rep.overall.ok, 3);
  t.same(rep.overall.replicas, { 'web.1': 2, 'web.2': 1 });
  t.equal(rep.overall.evenness, 0.5);
  t.equal(rep.overall.pass, false, 'one failing target fails the run');
  t.same(rep.targets.map((x) => x.verdict.pass), [true, false]);
  const text = formatReport(rep);
  t.match(text, /n1\s+198\.18\.200\.11:8080\/http\s+2\/2\s+100%.*PASS/);
  t.match(text, /n2.*FAIL: 1\/2 answered, need 2 \(timeout x1\); 1 replica\(s\) answered, need 2/);
  t.match(text, /overall: 3\/4 answered \(75\.0%\).*FAIL/);
  t.same(JSON.parse(JSON.stringify(rep)), rep, 'the JSON form round-trips');
  t.equal(buildReport('tcp', { minSuccess: 1, minReplicas: 0 }, [], 0).overall.pass, false, 'no targets is not a pass');
});
