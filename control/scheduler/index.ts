// The scheduler's public surface (see scheduler.ts for the calling order).
export { schedule, isSchedulable, type ScheduleInput, type ScheduleDecisions, type Assignment, type Unplaced, type NodeResources } from './scheduler.js';
export { decisionsToOps } from './ops.js';
export { parseConstraint, parseConstraints, matchConstraint, ConstraintError, type Constraint } from './constraint.js';
