/**
 * @module
 * How much history an engine keeps unless told otherwise: the same for every engine and for
 * createHerald, so that resuming works whichever engine an application builds (an engine that
 * kept none by default would turn resume off without a word).
 */
export const HISTORY_DEFAULTS = { historySize: 100, historyTtlMs: 0 } as const;
