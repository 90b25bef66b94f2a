// `window.radiocore`: what tests and curious operators (in the dev tools) can read of the
// console's state. A view, never a store: every property is a getter over the console's own
// state, data comes out as frozen copies, and nothing can be written through it. No program
// logic reads it back.

/**
 * A deep, frozen copy of plain data (objects and arrays); anything else as it is (numbers,
 * strings, and live objects such as the RTCPeerConnection, which tests ask for its stats).
 * @param {unknown} value
 * @returns {unknown}
 */
export function snapshot(value) {
  if (Array.isArray(value)) return Object.freeze(value.map(snapshot));
  if (value !== null && typeof value === "object") {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return value;
    /** @type {Record<string, unknown>} */
    const copy = {};
    for (const [key, item] of Object.entries(value)) copy[key] = snapshot(item);
    return Object.freeze(copy);
  }
  return value;
}

/**
 * A frozen object with one read-only, enumerable property per getter; reading a property
 * calls its getter and returns a `snapshot` of the result. Assigning, adding or deleting a
 * property throws in strict code (and does nothing in sloppy code).
 * @template {Record<string, () => unknown>} T
 * @param {T} getters
 * @returns {Readonly<{[K in keyof T]: ReturnType<T[K]>}>}
 */
export function createDebugView(getters) {
  const view = {};
  for (const [name, read] of Object.entries(getters)) {
    Object.defineProperty(view, name, { get: () => snapshot(read()), enumerable: true });
  }
  return /** @type {any} */ (Object.freeze(view));
}

/**
 * Puts `view` on `target` (the window) as `radiocore`, neither writable nor configurable.
 * @param {object} target
 * @param {object} view
 */
export function exposeDebugView(target, view) {
  Object.defineProperty(target, "radiocore", {
    value: view,
    writable: false,
    configurable: false,
    enumerable: true,
  });
}
