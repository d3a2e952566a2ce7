// Owns: the `veer` commands (serve, validate; admin-talking commands as they come).
// Must not touch: routing internals; it drives main.ts and, later, the admin API.

export { main, buildProgram } from './main.ts';
export { runValidate } from './validate.ts';
export { formatIssue, formatSummary } from './format.ts';
