import * as Resource from "@effect/opentelemetry/Resource"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { Console, Layer, Stream } from "effect"
import { FlowLog, FlowWalker, MetricsExport } from "effect-conntrack"

/** The walker's series on the application's own Prometheus exporter (its server on :9464/metrics). */
export const MetricsLive = MetricsExport.layer(() => new PrometheusExporter({ port: 9464 })).pipe(
  Layer.provide(Resource.layer({ serviceName: "my-app" }))
)

/** Each closed connection, once, as a JSON line. */
export const logClosed = FlowLog.closed({ interval: "1 second" }).pipe(
  Stream.runForEach((closed) => Console.log(FlowLog.toJson(closed)))
)

export const WalkerLive = FlowWalker.layer({ protocol: "tcp" })

export const AppLive = MetricsLive.pipe(Layer.provideMerge(WalkerLive), Layer.provide(NodeContext.layer))
