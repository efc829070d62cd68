// fast-check arbitraries for load-balancing states: small address and port pools so that random
// states overlap (the interesting case for a diff), every frontend shape, weights including 0.
import fc from 'fast-check';
import { ANY_ADDR, frontendKey, type Frontend, type LbState } from '../../../dataplane/lb/index.js';

export const arbIp = (net = '10.9.0'): fc.Arbitrary<string> => fc.integer({ min: 2, max: 40 }).map((n) => `${net}.${n}`);

export const arbBackends: fc.Arbitrary<Record<string, number>> = fc.dictionary(arbIp('10.9.1'), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 })), { maxKeys: 6 });

export const arbFrontend: fc.Arbitrary<Frontend> = fc.oneof(
  fc.record({ addr: arbIp(), backends: arbBackends }).map(({ addr, backends }) => ({ match: { addr, proto: 'any' as const, port: 0 }, targetPort: 0, backends })),
  fc.record({ addr: arbIp(), proto: fc.constantFrom('tcp' as const, 'udp' as const), port: fc.integer({ min: 1, max: 6 }), target: fc.integer({ min: 1, max: 3 }), backends: arbBackends })
    .map(({ addr, proto, port, target, backends }) => ({ match: { addr, proto, port: port * 1000 }, targetPort: target * 1000 + 80, backends })),
  fc.record({ proto: fc.constantFrom('tcp' as const, 'udp' as const), port: fc.integer({ min: 1, max: 6 }), target: fc.integer({ min: 1, max: 3 }), snat: fc.constantFrom('10.255.0.2', '10.255.0.3'), backends: arbBackends })
    .map(({ proto, port, target, snat, backends }) => ({ match: { addr: ANY_ADDR, proto, port: 8000 + port }, targetPort: target * 1000 + 80, snat, backends })),
);

export const arbState: fc.Arbitrary<LbState> = fc.array(arbFrontend, { maxLength: 8 }).map((fs) => {
  const s: LbState = { frontends: {} };
  for (const f of fs) s.frontends[frontendKey(f.match)] = f;
  return s;
});
