/**
 * The HTTP side of `effect-conntrack serve`, on `@effect/platform`'s `HttpRouter` (any `HttpServer` runs it; the
 * command line uses Node's):
 *
 * - `/metrics`: the Prometheus page of `MetricsExport.layerPrometheus`;
 * - `/healthz`: 200 while the process runs;
 * - `/readyz`: 200 once the walker's first dump is in, 503 before it and while the walker keeps failing
 *   (`unreadyAfter` failed sessions in a row), with the walker's status as JSON.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import { FlowWalker, type Status } from "./FlowWalker.js"
import { contentType, Prometheus } from "./MetricsExport.js"

export interface ServeOptions {
  /** Failed walker sessions in a row (since its last sync) after which `/readyz` says 503. Default 3. */
  readonly unreadyAfter?: number
}

/** Whether a walker in this state is ready to be scraped: its first dump is in and it is not failing again and again. */
export const isReady = (status: Status, unreadyAfter = 3): boolean =>
  status.ready && (status.synced || status.failures < unreadyAfter)

/** The routes: `/metrics`, `/healthz`, `/readyz`. */
export const router = (options: ServeOptions = {}): HttpRouter.HttpRouter<never, FlowWalker | Prometheus> =>
  HttpRouter.empty.pipe(
    HttpRouter.get(
      "/metrics",
      Effect.flatMap(Prometheus, (p) => p.scrape).pipe(
        Effect.map((page) => HttpServerResponse.text(page, { contentType })),
        Effect.catchTag("ScrapeFailed", (error) =>
          Effect.as(Effect.logError(error.message), HttpServerResponse.text(`${error.message}\n`, { status: 500 }))
        )
      )
    ),
    HttpRouter.get("/healthz", Effect.succeed(HttpServerResponse.text("ok\n"))),
    HttpRouter.get(
      "/readyz",
      Effect.flatMap(FlowWalker, (walker) => walker.status).pipe(
        Effect.map((status) =>
          HttpServerResponse.unsafeJson(status, { status: isReady(status, options.unreadyAfter) ? 200 : 503 })
        )
      )
    )
  )

/** The routes served by the `HttpServer` in context, for as long as the layer lives. */
export const layer = (
  options: ServeOptions = {}
): Layer.Layer<never, never, HttpServer.HttpServer | FlowWalker | Prometheus> => HttpServer.serve(router(options))

export { BadListenAddress, defaultListen, type ListenAddress, ListenFailed, parseListen } from "./Listen.js"
