/**
 * `effect-conntrack serve`: runs the walker as a daemon and serves `/metrics` (Prometheus), `/healthz` and `/readyz`
 * over HTTP, with an optional flow log of closed connections. SIGTERM and SIGINT stop it: the server closes first,
 * then the flow log is flushed, then conntrack is stopped.
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Effect from "effect/Effect"
import * as Listen from "../Listen.js"
import * as Flags from "./Flags.js"

const listen = Options.text("listen").pipe(
  Options.withDescription(
    `HOST:PORT to serve /metrics, /healthz and /readyz on (default ${Listen.defaultListen}; 0.0.0.0:9464 for a fleet)`
  ),
  Options.withDefault(Listen.defaultListen),
  Options.mapEffect((text) =>
    Listen.parseListen(text).pipe(Effect.mapError((error) => ValidationError.invalidValue(HelpDoc.p(error.message))))
  )
)

const flowLog = Options.text("flow-log").pipe(
  Options.withDescription("append one JSON line per closed connection to this file, or write them to stdout with -"),
  Options.optional
)

export const serveCommand = Command.make(
  "serve",
  {
    listen,
    flowLog,
    proto: Flags.proto,
    bufferSize: Flags.bufferSize,
    procRoot: Flags.procRoot,
    conntrack: Flags.conntrack
  },
  (flags) =>
    Effect.flatMap(
      Effect.promise(() => import("./ServeRun.js")),
      (run) => run.serve(flags)
    )
).pipe(
  Command.withDescription(
    "Run the walker as a daemon: Prometheus metrics on /metrics, /healthz and /readyz for probes, and with --flow-log one JSON line per closed connection. Stops cleanly on SIGTERM or Ctrl-C."
  )
)
