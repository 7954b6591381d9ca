/**
 * An immutable map from numbers (conntrack ids) to values, fast for the two shapes of work a flow table does: bulk
 * loads (a dump of 262,144 flows) and a steady trickle of small changes (events).
 *
 * It is a native `Map` that is never written after it is published (the base), plus a small persistent `HashMap`
 * of changes on top of it (the overlay; `null` marks a removal). A batch that is large next to the table is applied
 * to a fresh copy of the base; small batches go to the overlay, which is folded into a new base once it grows past
 * a fraction of the table. Every operation returns a new index and leaves the old one as it was.
 */
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"

export interface FlowIndex<V> {
  readonly base: ReadonlyMap<number, V>
  readonly overlay: HashMap.HashMap<number, V | null>
  readonly size: number
}

export const empty = <V>(): FlowIndex<V> => ({ base: new Map(), overlay: HashMap.empty(), size: 0 })

export const get = <V>(index: FlowIndex<V>, key: number): V | undefined => {
  if (HashMap.size(index.overlay) > 0) {
    const o = HashMap.get(index.overlay, key)
    if (Option.isSome(o)) return o.value === null ? undefined : o.value
  }
  return index.base.get(key)
}

/** A base with every change of the overlay applied: a fresh native map. */
const flatten = <V>(index: FlowIndex<V>): Map<number, V> => {
  const map = new Map(index.base)
  HashMap.forEach(index.overlay, (value, key) => {
    if (value === null) map.delete(key)
    else map.set(key, value)
  })
  return map
}

/** Calls `f` on every entry, without copying (the base's entries the overlay does not change, then the overlay's). */
export const forEach = <V>(index: FlowIndex<V>, f: (value: V, key: number) => void): void => {
  if (HashMap.size(index.overlay) === 0) {
    index.base.forEach(f)
    return
  }
  index.base.forEach((value, key) => {
    if (!HashMap.has(index.overlay, key)) f(value, key)
  })
  HashMap.forEach(index.overlay, (value, key) => {
    if (value !== null) f(value, key)
  })
}

/** The same entries with an empty overlay (iteration is then native speed). */
export const compact = <V>(index: FlowIndex<V>): FlowIndex<V> =>
  HashMap.size(index.overlay) === 0 ? index : { base: flatten(index), overlay: HashMap.empty(), size: index.size }

/** Changes being made to an index by one batch; `done` turns them into a new index. */
export interface Editor<V> {
  readonly get: (key: number) => V | undefined
  readonly forEach: (f: (value: V, key: number) => void) => void
  readonly set: (key: number, value: V) => void
  readonly remove: (key: number) => void
  readonly done: () => FlowIndex<V>
}

/** Starts a batch of about `expected` changes (`Infinity` when the batch rewrites the whole index). */
export const edit = <V>(index: FlowIndex<V>, expected: number): Editor<V> => {
  let size = index.size
  // A large batch that is also a quarter of the table or more: copy once and write natively.
  if (expected >= 1024 && expected * 4 >= index.size) {
    const map = flatten(index)
    return {
      get: (key) => map.get(key),
      forEach: (f) => map.forEach(f),
      set: (key, value) => {
        map.set(key, value)
      },
      remove: (key) => {
        map.delete(key)
      },
      done: () => ({ base: map, overlay: HashMap.empty(), size: map.size })
    }
  }
  // Persistent operations, not HashMap.beginMutation: in effect 3.22.4 a HashMap in mutation mode can crash on remove
  // ("Cannot read properties of undefined"), which a walker under load hit.
  let overlay = index.overlay
  const current = (key: number): V | undefined => {
    const o = HashMap.get(overlay, key)
    if (Option.isSome(o)) return o.value === null ? undefined : o.value
    return index.base.get(key)
  }
  return {
    get: current,
    forEach: (f) => {
      index.base.forEach((value, key) => {
        if (!HashMap.has(overlay, key)) f(value, key)
      })
      HashMap.forEach(overlay, (value, key) => {
        if (value !== null) f(value, key)
      })
    },
    set: (key, value) => {
      if (current(key) === undefined) size++
      overlay = HashMap.set(overlay, key, value)
    },
    remove: (key) => {
      if (current(key) === undefined) return
      size--
      overlay = index.base.has(key) ? HashMap.set(overlay, key, null) : HashMap.remove(overlay, key)
    },
    done: () => {
      const next = { base: index.base, overlay, size }
      // Fold the overlay in once it is large next to the base: reads and walks stay fast.
      return HashMap.size(next.overlay) > Math.max(4096, index.base.size / 8) ? compact(next) : next
    }
  }
}
