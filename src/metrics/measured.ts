// What metrics read of the rest of veer, as shapes rather than imports: a
// route table's versions and an exchange that ended. The table's and the
// forwarder's own objects fit these shapes, so metrics depends on neither.

/** A version of a service (a compiled table's version fits). */
export interface MeasuredVersion {
  readonly name: string;
  readonly service: { readonly name: string };
  /** Labels from the config (commit, image...), for veer_version_info. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A service with its versions and their share of split traffic (0-100, version order). */
export interface MeasuredService {
  readonly name: string;
  readonly versions: readonly MeasuredVersion[];
  readonly versionsByName: { has(name: string): boolean };
  readonly split: { readonly percents: readonly number[] };
}

/** The services of a published table. */
export interface MeasuredTable {
  readonly services: readonly MeasuredService[];
  readonly servicesByName: { has(name: string): boolean; get(name: string): MeasuredService | undefined };
}

/** An exchange that ended (the forwarder's exchange fits). */
export interface MeasuredExchange {
  readonly version: MeasuredVersion;
  /** The status the client got (499: it went away first). */
  readonly status: number;
  /** Set when the upstream failed; `kind` is folded into FAILURE_KINDS. */
  readonly failure: { readonly kind: string } | null;
  /** When the request arrived, on the recorder's clock (performance.now by default). */
  readonly startedAt: number;
  readonly method: string;
  /** Why each retry happened; null when there was none. */
  readonly retryReasons: readonly string[] | null;
  /** The version that answered instead of `version`; null when it did not fail over. */
  readonly failedOverTo: MeasuredVersion | null;
  /** The call's grpc-status for a gRPC exchange; negative for any other. */
  readonly grpcStatus: number;
}

/** An upstream endpoint of a version, and whether it is in rotation (the forwarder's registry fits). */
export interface MeasuredEndpoint {
  readonly version: MeasuredVersion;
  readonly endpoint: { readonly origin: string; readonly up: boolean };
}
