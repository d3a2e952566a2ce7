// The error a matcher or pattern spec raises when it cannot be compiled.

import { CodedError, type ConfigIssueCode } from '../errors.ts';

/** A spec that could not be compiled; `field` names the offending key. */
export class MatcherSpecError extends CodedError<ConfigIssueCode> {
  readonly field: string | undefined;
  constructor(code: ConfigIssueCode, message: string, field?: string) {
    super(code, message);
    this.field = field;
  }
}
