// Service changes the API makes (pure: the API proposes the result with compare-and-set).
//   updateServiceSpec(s, spec, at): a `service update`/`scale`: previousSpec = old spec, version + 1;
//     a changed task spec clears updateStatus so the orchestrator starts a fresh rolling update.
//   rollbackService(s, at): `service rollback`: swap spec and previousSpec, state rollback_started.
import type { ServiceObject, ServiceSpec } from '../store/objects.js';
import { sameTaskSpec } from './spec-key.js';

export function updateServiceSpec(s: ServiceObject, spec: ServiceSpec, at: string): ServiceObject {
  const next: ServiceObject = { ...s, spec, previousSpec: s.spec, specVersion: s.specVersion + 1 };
  if (!sameTaskSpec(spec.task, s.spec.task)) delete next.updateStatus;
  void at; // kept for symmetry with rollbackService; the update's start time is set by the orchestrator
  return next;
}

export function rollbackSpec(s: ServiceObject, at: string, message: string): ServiceObject {
  if (!s.previousSpec) throw new Error(`service ${s.spec.name} has no previous spec to roll back to`);
  return {
    ...s,
    spec: s.previousSpec,
    previousSpec: s.spec,
    specVersion: s.specVersion + 1,
    updateStatus: { state: 'rollback_started', startedAt: at, message },
  };
}

/** `service rollback`: throws when there is nothing to roll back to. */
export function rollbackService(s: ServiceObject, at: string): ServiceObject {
  return rollbackSpec(s, at, 'manually requested rollback');
}
