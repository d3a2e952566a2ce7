// Owns: the `veer` commands: serve and validate (through main.ts), and the admin-talking ones (status, weights, shift, rollout, explain).
// Must not touch: any room but config/; veer's running state only through the admin API and its answer types.

export { main, buildProgram } from './main.ts';
export { runValidate } from './validate.ts';
export { formatIssue, formatSummary } from './format.ts';
