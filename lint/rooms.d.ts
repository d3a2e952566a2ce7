// Types of lint/rooms.js (plain JavaScript, so eslint.config.js loads it without a build).

export declare const ALLOWED: Readonly<Record<string, readonly string[]>>;
export declare const TYPES_ONLY: Readonly<Record<string, readonly string[]>>;
export declare const ROOMS: readonly string[];
export declare function reachableFrom(room: string): Set<string>;
export declare function checkImport(srcDir: string, file: string, specifier: string, typeOnly: boolean): string | null;
export declare function roomsPlugin(srcDir: string): unknown;
