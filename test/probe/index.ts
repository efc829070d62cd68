// The outside probe, as a library for the lab, VM and Vagrant tiers (the CLI is cli.ts).
export { probe, probeUntil, type ProbeOptions } from './probe.js';
export { attempt, tcpConnect, udpRequest, httpGet, type Attempt, type Proto } from './clients.js';
export { buildReport, formatReport, judge, summarizeTarget, type Criteria, type ProbeReport, type TargetReport, type Verdict } from './report.js';
export { parseTarget, parseTargets, TargetError, type Target } from './targets.js';
export { percentile, summarizeLatency, countBy, evenness, type LatencySummary } from './stats.js';
export { parseHttpReply, parseUdpReply, UNKNOWN_REPLICA, type ReplicaId } from './reply.js';
