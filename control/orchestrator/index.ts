// The orchestrator's public surface (see reconcile.ts for the calling order).
export { reconcile, DEFAULT_HISTORY_LIMIT, type ReconcileInput, type ReconcileResult } from './reconcile.js';
export { updateServiceSpec, rollbackService } from './service-spec.js';
export { updateConfigFor } from './update.js';
export { restartDecision, type RestartDecision } from './restart.js';
export { sameTaskSpec } from './spec-key.js';
export {
  TASK_STATES, isTerminal, stateOrder, canTransition, checkAgentReport, applyAgentReport,
  type AgentReport, type ReportCheck,
} from './task-states.js';
