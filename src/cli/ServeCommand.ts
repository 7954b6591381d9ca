/**
 * `effect-conntrack serve`: runs the walker as a daemon and serves `/metrics` (Prometheus), `/healthz` and `/readyz`
 * over HTTP, with an optional flow log of closed connections. SIGTERM and SIGINT stop it: the server closes first,
 * then the flow log is flushed, then conntrack is stopped.
 */
import * as http from "node:http"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Resource from "@effect/opentelemetry/Resource"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as FlowLog from "../FlowLog.js"
import * as FlowWalker from "../FlowWalker.js"
import * as KernelSupport from "../KernelSupport.js"
import * as MetricsExport from "../MetricsExport.js"
import { resolve } from "../Options.js"
import * as Serve from "../Serve.js"
import * as Flags from "./Flags.js"
import * as Heap from "./Heap.js"
import { ExitStatus } from "./Input.js"

const listen = Options.text("listen").pipe(
  Options.withDescription(
    `HOST:PORT to serve /metrics, /healthz and /readyz on (default ${Serve.defaultListen}; 0.0.0.0:9464 for a fleet)`
  ),
  Options.withDefault(Serve.defaultListen),
  Options.mapEffect((text) =>
    Serve.parseListen(text).pipe(Effect.mapError((error) => ValidationError.invalidValue(HelpDoc.p(error.message))))
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
    Effect.gen(function* () {
      // A daemon's normal end is a signal: it exits 0 then.
      ;(yield* ExitStatus).signalEndsCleanly = true
      // Memory that follows what the walker keeps, not V8's throughput headroom (see Heap.ts).
      yield* Heap.bound
      const options = yield* Flags.walkerOptions(flags)
      const procRoot = resolve(options).procRoot
      // Fail fast on what a user can fix, instead of a daemon that reports nothing or keeps retrying: events off here,
      // a missing conntrack or no privilege from the walker's own first attempt (no throwaway dump).
      yield* KernelSupport.check(procRoot)
      // Acquired first, released last: the flow log's last walk and the server's last scrape still see it.
      // Its consumers (the flow log, the metrics) read through readers of their own.
      const walker = yield* FlowWalker.make({ ...options, ownReader: false })
      const address = `${flags.listen.host.includes(":") ? `[${flags.listen.host}]` : flags.listen.host}:${flags.listen.port}`
      const server = Serve.layer().pipe(
        Layer.provideMerge(MetricsExport.layerPrometheus({ procRoot, include: MetricsExport.conntrackOnly })),
        Layer.provide(Resource.layer({ serviceName: "effect-conntrack", serviceVersion: "0.1.0" })),
        HttpServer.withLogAddress,
        Layer.provide(
          NodeHttpServer.layer(() => http.createServer(), { host: flags.listen.host, port: flags.listen.port }).pipe(
            Layer.mapError(
              (error) =>
                new Serve.ListenFailed({
                  address,
                  reason: error.cause instanceof Error ? error.cause.message : String(error.cause)
                })
            )
          )
        )
      )
      return yield* Effect.gen(function* () {
        const logFailed = Option.isSome(flags.flowLog) ? yield* FlowLog.write(flags.flowLog.value) : Effect.never
        const fatal = Effect.zipRight(walker.ready, Effect.never)
        return yield* Effect.raceFirst(Effect.raceFirst(Layer.launch(server), logFailed), fatal)
      }).pipe(Effect.provideService(FlowWalker.FlowWalker, walker))
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "Run the walker as a daemon: Prometheus metrics on /metrics, /healthz and /readyz for probes, and with --flow-log one JSON line per closed connection. Stops cleanly on SIGTERM or Ctrl-C."
  )
)
