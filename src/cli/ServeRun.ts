/**
 * What `effect-conntrack serve` runs, loaded only when it runs: the HTTP server and the metrics exporter (OpenTelemetry)
 * take longer to load than the rest of the command line.
 */
import * as http from "node:http"
import * as Resource from "@effect/opentelemetry/Resource"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as FlowLog from "../FlowLog.js"
import * as FlowWalker from "../FlowWalker.js"
import * as KernelSupport from "../KernelSupport.js"
import type { ListenAddress } from "../Listen.js"
import * as MetricsExport from "../MetricsExport.js"
import { resolve } from "../Options.js"
import * as Serve from "../Serve.js"
import * as Flags from "./Flags.js"
import * as Heap from "./Heap.js"
import { ExitStatus } from "./Input.js"

export interface ServeFlags extends Flags.Given {
  readonly listen: ListenAddress
  readonly flowLog: Option.Option<string>
}

export const serve = (flags: ServeFlags) =>
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
