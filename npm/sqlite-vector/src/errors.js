// Errors of the sqlite-vector JS API.

/**
 * An error from sqlite-vector. `kind` is the core's error class: `InvalidInput`, `NotFound`,
 * `AlreadyExists`, `ProfileMismatch`, `NotAShard`, `Busy`, `Corrupt`, `Io`, `Internal` or
 * `UnknownShard`.
 */
export class SqliteVectorError extends Error {
  constructor(message, kind, options) {
    super(message, options);
    this.name = 'SqliteVectorError';
    this.kind = kind;
  }
}

/**
 * The store is open in another tab or worker (kind `StorageBusy`): it stays there until that
 * one closes it; retry later. Never a sign of damage.
 */
export class StorageBusyError extends SqliteVectorError {
  constructor(message, options) {
    super(message, 'StorageBusy', options);
    this.name = 'StorageBusyError';
  }
}

/** A `TypeError` with `kind` `InvalidInput`: an argument of the wrong JS type. */
export function invalidType(message) {
  const e = new TypeError(message);
  e.kind = 'InvalidInput';
  return e;
}

/** Bad input found on the JS side, before the wasm module. */
export function invalidInput(message) {
  return new SqliteVectorError(message, 'InvalidInput');
}
