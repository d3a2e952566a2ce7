// The long form of a service's routing, `rules:`, in Gateway API's shape
// (HTTPRouteRule): several matches per rule, a target version or a split of
// its own, filters and timeouts. Shape and defaults only: precedence, regex
// safety and unknown versions are compile's.

import { Type, type Static } from '@sinclair/typebox';

const Strict = { additionalProperties: false } as const;
const DURATION = { pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$', description: 'a duration such as 500ms, 30s, 1m or 1h' };
const HEADER_NAME = { pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", maxLength: 256, description: 'an HTTP header name' };

/** `path: { type, value }`: Exact, PathPrefix (whole segments) or RegularExpression (RE2, the whole path). */
const PathMatch = Type.Object(
  {
    type: Type.Union([Type.Literal('Exact'), Type.Literal('PathPrefix'), Type.Literal('RegularExpression')], { default: 'PathPrefix' }),
    value: Type.String({ minLength: 1, maxLength: 1024, default: '/' }),
  },
  Strict,
);

/** One header, query parameter or cookie condition: Exact (the default), RegularExpression or Present. */
function namedMatch(name: object) {
  return Type.Object(
    {
      name: Type.String({ minLength: 1, ...name }),
      type: Type.Union([Type.Literal('Exact'), Type.Literal('RegularExpression'), Type.Literal('Present')], { default: 'Exact' }),
      value: Type.Optional(Type.String({ maxLength: 4096 })),
    },
    Strict,
  );
}

const HeaderMatch = namedMatch(HEADER_NAME);
const PairMatch = namedMatch({ maxLength: 256 });

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

/** One way a rule matches: every condition given must hold. */
const RuleMatch = Type.Object(
  {
    path: Type.Optional(PathMatch),
    method: Type.Optional(Type.Union(METHODS.map((m) => Type.Literal(m)))),
    headers: Type.Optional(Type.Array(HeaderMatch, { maxItems: 16 })),
    queryParams: Type.Optional(Type.Array(PairMatch, { maxItems: 16 })),
    cookies: Type.Optional(Type.Array(PairMatch, { maxItems: 16 })),
  },
  Strict,
);

const HeaderValue = Type.Object({ name: Type.String({ minLength: 1, ...HEADER_NAME }), value: Type.String({ maxLength: 4096 }) }, Strict);

/** Gateway API's HTTPHeaderFilter: set replaces, add appends, remove drops (names case-insensitive). */
const HeaderModifier = Type.Object(
  {
    set: Type.Optional(Type.Array(HeaderValue, { maxItems: 32 })),
    add: Type.Optional(Type.Array(HeaderValue, { maxItems: 32 })),
    remove: Type.Optional(Type.Array(Type.String({ minLength: 1, ...HEADER_NAME }), { maxItems: 32 })),
  },
  Strict,
);

/** HTTPPathModifier: the whole path, or the part the rule's PathPrefix matched. */
const PathModifier = Type.Union(
  [
    Type.Object({ type: Type.Literal('ReplaceFullPath'), replaceFullPath: Type.String({ pattern: '^/[^?#]*$' }) }, Strict),
    Type.Object({ type: Type.Literal('ReplacePrefixMatch'), replacePrefixMatch: Type.String({ pattern: '^/[^?#]*$' }) }, Strict),
  ],
  { description: '{ type: ReplaceFullPath, replaceFullPath: /path } or { type: ReplacePrefixMatch, replacePrefixMatch: /prefix }' },
);

const HOSTNAME = { minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$', description: 'a host name' };

/** One filter: exactly one key, as Gateway API's HTTPRouteFilter with its type implied by the key. */
const RuleFilter = Type.Union(
  [
    Type.Object({ requestHeaderModifier: HeaderModifier }, Strict),
    Type.Object({ responseHeaderModifier: HeaderModifier }, Strict),
    Type.Object({ urlRewrite: Type.Object({ hostname: Type.Optional(Type.String(HOSTNAME)), path: Type.Optional(PathModifier) }, { ...Strict, minProperties: 1 }) }, Strict),
    Type.Object(
      {
        requestRedirect: Type.Object(
          {
            scheme: Type.Optional(Type.Union([Type.Literal('http'), Type.Literal('https')])),
            hostname: Type.Optional(Type.String(HOSTNAME)),
            port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
            path: Type.Optional(PathModifier),
            statusCode: Type.Optional(Type.Union([Type.Literal(301), Type.Literal(302), Type.Literal(303), Type.Literal(307), Type.Literal(308)], { description: '301, 302 (the default), 303, 307 or 308' })),
          },
          Strict,
        ),
      },
      Strict,
    ),
    Type.Object({ requestMirror: Type.Object({ to: Type.String({ minLength: 1 }), percent: Type.Optional(Type.Number({ minimum: 0, maximum: 100, description: 'share of the requests copied (default 100)' })) }, Strict) }, Strict),
  ],
  { description: 'one of requestHeaderModifier, responseHeaderModifier, urlRewrite, requestRedirect or requestMirror' },
);

/** Where a sticky split reads its key. */
export const StickyKey = Type.Union(
  [
    Type.Object({ header: Type.String(HEADER_NAME) }, Strict),
    Type.Object({ cookie: Type.String({ minLength: 1, maxLength: 256 }) }, Strict),
    Type.Object({ query: Type.String({ minLength: 1, maxLength: 256 }) }, Strict),
  ],
  { description: 'one of { header: NAME }, { cookie: NAME } or { query: NAME }' },
);

const Weights = Type.Record(Type.String(), Type.Number({ minimum: 0, maximum: 1e9 }), {
  description: 'version name -> non-negative number',
});

/** A weighted split (a service's, or a rule's own): monotonic, optionally sticky. */
export const Split = Type.Object(
  {
    weights: Weights,
    sticky: Type.Optional(StickyKey),
    seed: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  },
  Strict,
);

/** One entry of a service's `rules:`. */
export const HttpRule = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    matches: Type.Optional(Type.Array(RuleMatch, { maxItems: 64, description: 'ORed; none: every request under the service\'s pathPrefix' })),
    to: Type.Optional(Type.String({ minLength: 1 })),
    split: Type.Optional(Split),
    filters: Type.Optional(Type.Array(RuleFilter, { maxItems: 16 })),
    timeouts: Type.Optional(Type.Object({ request: Type.Optional(Type.String(DURATION)), backendRequest: Type.Optional(Type.String(DURATION)) }, Strict)),
  },
  Strict,
);

/** One entry of `rules:`. */
export type HttpRuleConfig = Static<typeof HttpRule>;
/** One entry of a rule's `matches`. */
export type RuleMatchConfig = Static<typeof RuleMatch>;
/** One header, query parameter or cookie condition of a match. */
export type NamedMatchConfig = Static<typeof HeaderMatch>;
/** One entry of a rule's `filters`. */
export type RuleFilterConfig = Static<typeof RuleFilter>;
/** A header modifier filter's body. */
export type HeaderModifierConfig = Static<typeof HeaderModifier>;
/** A path modifier (urlRewrite.path, requestRedirect.path). */
export type PathModifierConfig = Static<typeof PathModifier>;
