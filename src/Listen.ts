/**
 * The address `serve` listens on, and why it cannot: kept apart from `Serve` so that reading the command line does not
 * load the HTTP server and the metrics exporter.
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"

/** The HTTP server could not listen on the address. */
export class ListenFailed extends Data.TaggedError("ListenFailed")<{
  readonly address: string
  readonly reason: string
}> {
  override get message() {
    return `cannot listen on ${this.address}: ${this.reason}`
  }
}

/** A `HOST:PORT` to listen on (`[::1]:9464` for IPv6). */
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/** The default address: this host only. `0.0.0.0:9464` serves a fleet's Prometheus. */
export const defaultListen = "127.0.0.1:9464"

/** Why `HOST:PORT` is not an address to listen on. */
export class BadListenAddress extends Data.TaggedError("BadListenAddress")<{ readonly input: string }> {
  override get message() {
    return `--listen must be HOST:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::]:9464), not ${JSON.stringify(this.input)}`
  }
}

/** Parses `HOST:PORT` (the host in brackets when it is an IPv6 address). */
export const parseListen = (input: string): Effect.Effect<ListenAddress, BadListenAddress> => {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(input.trim())
  const port = m === null ? Number.NaN : Number(m[3])
  if (m === null || !(port >= 0 && port <= 65_535)) return Effect.fail(new BadListenAddress({ input }))
  return Effect.succeed({ host: (m[1] ?? m[2]) as string, port })
}
