// The HTTP side of `serve` (/metrics, /healthz, /readyz) over a live walker on the scripted conntrack. Requests go
// through the router as a web handler: no socket is opened (listening is tested in the kernel suite, in a namespace).
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Resource from "@effect/opentelemetry/Resource"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import type * as Scope from "effect/Scope"
import * as FlowWalker from "../src/FlowWalker.js"
import * as MetricsExport from "../src/MetricsExport.js"
import type { WalkerOptions } from "../src/Options.js"
import * as Serve from "../src/Serve.js"
import * as Scripted from "../src/testing.js"

const v4 = Scripted.tcpFlow({ id: 1, sport: 40001, dport: 80 })
const v4b = Scripted.tcpFlow({ id: 2, sport: 40002, dport: 80 })
const v6 = Scripted.tcpFlow({ id: 3, sport: 40003, dport: 443, src: "::1", dst: "::1" })
const synSent = Scripted.tcpFlow({ id: 4, sport: 40004, dport: 80, state: "SYN_SENT" })
const udp = { ...Scripted.tcpFlow({ id: 5, sport: 5353, dport: 53 }), proto: "udp" as const, protonum: 17 }
delete (udp as { state?: string }).state
const closing = (flow: typeof v4) => ({ ...flow, state: "CLOSE", type: "DESTROY" as const })

/** A proc root with the kernel's table files. */
const procRoot = (count: string | undefined, max: string | undefined) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-serve-"))
  const dir = path.join(root, "sys/net/netfilter")
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, "nf_conntrack_events"), "1\n")
  if (count !== undefined) fs.writeFileSync(path.join(dir, "nf_conntrack_count"), count)
  if (max !== undefined) fs.writeFileSync(path.join(dir, "nf_conntrack_max"), max)
  return root
}

/** The routes over a live walker on the scripted conntrack, as a `Request => Response` function. */
const served = (
  script: Scripted.Script,
  options: WalkerOptions & { readonly procRoot: string },
  logs: Array<string> = []
): Effect.Effect<
  { readonly get: (path: string) => Effect.Effect<{ status: number; body: string; type: string | null }> },
  never,
  Scope.Scope
> =>
  Effect.gen(function* () {
    const walker = yield* FlowWalker.make({ restartDelay: "20 millis", ...options }).pipe(
      Effect.provide(Scripted.layer(script))
    )
    const services = Layer.succeed(FlowWalker.FlowWalker, walker)
    const layer = Layer.mergeAll(
      services,
      MetricsExport.layerPrometheus({ procRoot: options.procRoot, include: MetricsExport.conntrackOnly }).pipe(
        Layer.provide(
          Layer.mergeAll(
            services,
            NodeContext.layer,
            Resource.layer({ serviceName: "test" }),
            Logger.replace(
              Logger.defaultLogger,
              Logger.make(({ logLevel, message }) => {
                logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
              })
            ),
            Logger.minimumLogLevel(LogLevel.Debug)
          )
        )
      )
    )
    const app = yield* HttpRouter.toHttpApp(Serve.router())
    const web = HttpApp.toWebHandlerLayer(app, layer)
    yield* Effect.addFinalizer(() => Effect.promise(() => web.dispose()))
    return {
      get: (p: string) =>
        Effect.promise(async () => {
          const response = await web.handler(new Request(`http://localhost${p}`))
          return { status: response.status, body: await response.text(), type: response.headers.get("content-type") }
        })
    }
  })

/** Samples of one metric on a Prometheus page: `labels -> value`. */
const samples = (page: string, name: string): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const line of page.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m !== null && m[1] === name) out[m[2] ?? ""] = Number(m[3])
  }
  return out
}

const poll = <A>(what: string, effect: Effect.Effect<A | undefined>, ms = 5000) =>
  Effect.gen(function* () {
    const end = Date.now() + ms
    for (;;) {
      const a = yield* effect
      if (a !== undefined) return a
      if (Date.now() > end) return yield* Effect.dieMessage(`timed out waiting for ${what}`)
      yield* Effect.sleep("10 millis")
    }
  })

describe("serve's HTTP routes", () => {
  it.scopedLive("/metrics counts active flows by family, protocol and state, and reads the kernel's table files", () =>
    Effect.gen(function* () {
      const root = procRoot("42\n", "262144\n")
      const http = yield* served(
        {
          dump: [Scripted.dumpRun([v4, v4b, v6, synSent, udp])],
          events: [Scripted.eventsRun([{ sleep: "1500 millis" }, closing(v4), closing(v4b)])]
        },
        { procRoot: root, protocol: "all", includeNew: true }
      )
      yield* poll(
        "the first dump",
        Effect.map(http.get("/readyz"), (r) => (r.status === 200 ? r : undefined))
      )
      const first = yield* http.get("/metrics")
      expect(first.status).toBe(200)
      expect(first.type).toBe("text/plain; version=0.0.4; charset=utf-8")
      expect(samples(first.body, "conntrack_flows")).toEqual({
        '{family="ipv4",proto="tcp",state="ESTABLISHED"}': 2,
        '{family="ipv6",proto="tcp",state="ESTABLISHED"}': 1,
        '{family="ipv4",proto="tcp",state="SYN_SENT"}': 1,
        '{family="ipv4",proto="udp",state=""}': 1
      })
      expect(samples(first.body, "conntrack_table_entries")).toEqual({ "": 42 })
      expect(samples(first.body, "conntrack_table_limit")).toEqual({ "": 262144 })
      expect(first.body).toContain(
        "# HELP conntrack_table_entries entries in the kernel's conntrack table (nf_conntrack_count, read at scrape)"
      )

      // Read at each scrape, not once: the files change, and so do the flows (both ipv4 ESTABLISHED ones close).
      fs.writeFileSync(path.join(root, "sys/net/netfilter/nf_conntrack_count"), "7\n")
      const second = yield* poll(
        "the closed flows to leave the series",
        Effect.map(http.get("/metrics"), (r) =>
          samples(r.body, "conntrack_flows")['{family="ipv4",proto="tcp",state="ESTABLISHED"}'] === 0 ? r : undefined
        )
      )
      expect(samples(second.body, "conntrack_flows")).toEqual({
        '{family="ipv4",proto="tcp",state="ESTABLISHED"}': 0,
        '{family="ipv6",proto="tcp",state="ESTABLISHED"}': 1,
        '{family="ipv4",proto="tcp",state="SYN_SENT"}': 1,
        '{family="ipv4",proto="udp",state=""}': 1
      })
      expect(samples(second.body, "conntrack_table_entries")).toEqual({ "": 7 })
      fs.rmSync(root, { recursive: true })
    })
  )

  it.scopedLive("/metrics names counters with _total and their descriptions as HELP, and has no scope labels", () =>
    Effect.gen(function* () {
      const root = procRoot("1\n", "65536\n")
      const http = yield* served(
        { dump: [Scripted.dumpRun([v4])], events: [Scripted.eventsRun([{ sleep: "50 millis" }, closing(v4)])] },
        { procRoot: root }
      )
      const page = yield* poll(
        "an event folded",
        Effect.map(http.get("/metrics"), (r) => (/^conntrack_events_total[{ ]/m.test(r.body) ? r.body : undefined))
      )
      expect(page).toContain("# TYPE conntrack_events_total counter")
      expect(page).toContain("# HELP conntrack_events_total conntrack events folded, by type")
      expect(page).toContain("# TYPE conntrack_flows gauge")
      expect(page).not.toContain("description missing")
      expect(page).not.toContain("otel_scope")
      fs.rmSync(root, { recursive: true })
    })
  )

  it.scopedLive("/metrics still serves the flows when the kernel's table files are missing, and says so once", () =>
    Effect.gen(function* () {
      const root = procRoot(undefined, "12\n")
      const logs: Array<string> = []
      const http = yield* served({ dump: [Scripted.dumpRun([v6])] }, { procRoot: root }, logs)
      yield* poll(
        "ready",
        Effect.map(http.get("/readyz"), (r) => (r.status === 200 ? r : undefined))
      )
      const first = yield* http.get("/metrics")
      const second = yield* http.get("/metrics")
      expect(second.status).toBe(200)
      expect(samples(second.body, "conntrack_flows")['{family="ipv6",proto="tcp",state="ESTABLISHED"}']).toBe(1)
      expect(samples(first.body, "conntrack_table_limit")).toEqual({ "": 12 })
      const file = path.join(root, "sys/net/netfilter/nf_conntrack_count")
      const said = logs.filter((l) => l.includes("nf_conntrack_count"))
      expect(said).toHaveLength(1)
      expect(said[0]).toMatch(/^DEBUG \S+ could not be read \(.*ENOENT.*\): no nf_conntrack_count series$/)
      expect(said[0]?.startsWith(`DEBUG ${file} `)).toBe(true)
      fs.rmSync(root, { recursive: true })
    })
  )

  it.scopedLive("/healthz is 200 at once; /readyz is 503 until the first dump is in, then 200", () =>
    Effect.gen(function* () {
      const root = procRoot("0\n", "65536\n")
      const http = yield* served(
        { dump: [{ steps: [{ sleep: "400 millis" }, ...(Scripted.dumpRun([v4]).steps ?? [])] }] },
        { procRoot: root }
      )
      expect((yield* http.get("/healthz")).status).toBe(200)
      const before = yield* http.get("/readyz")
      expect(before.status).toBe(503)
      expect(JSON.parse(before.body)).toMatchObject({ ready: false })
      const after = yield* poll(
        "ready",
        Effect.map(http.get("/readyz"), (r) => (r.status === 200 ? r : undefined))
      )
      expect(JSON.parse(after.body)).toMatchObject({ ready: true })
      fs.rmSync(root, { recursive: true })
    })
  )

  it.scopedLive("/readyz turns 503 while the walker keeps failing after its first dump", () =>
    Effect.gen(function* () {
      const root = procRoot("0\n", "65536\n")
      const http = yield* served(
        {
          dump: [Scripted.dumpRun([v4])],
          // The first session runs a moment, then every event stream dies at once.
          events: [Scripted.eventsRun([{ sleep: "300 millis" }, { exit: 1 }]), Scripted.eventsRun([{ exit: 1 }])]
        },
        { procRoot: root }
      )
      yield* poll(
        "ready",
        Effect.map(http.get("/readyz"), (r) => (r.status === 200 ? r : undefined))
      )
      const failing = yield* poll(
        "not ready",
        Effect.map(http.get("/readyz"), (r) => (r.status === 503 ? r : undefined))
      )
      expect(JSON.parse(failing.body)).toMatchObject({ ready: true, synced: false })
      expect(JSON.parse(failing.body).failures).toBeGreaterThanOrEqual(3)
      fs.rmSync(root, { recursive: true })
    })
  )

  it("readiness: ready once the first dump is in, unless unsynced with unreadyAfter failures in a row", () => {
    expect(Serve.isReady({ ready: false, synced: false, failures: 0 })).toBe(false)
    expect(Serve.isReady({ ready: true, synced: true, failures: 0 })).toBe(true)
    expect(Serve.isReady({ ready: true, synced: false, failures: 2 })).toBe(true)
    expect(Serve.isReady({ ready: true, synced: false, failures: 3 })).toBe(false)
    expect(Serve.isReady({ ready: true, synced: false, failures: 1 }, 1)).toBe(false)
  })

  it.effect("--listen takes HOST:PORT and [IPv6]:PORT, and says what it wants otherwise", () =>
    Effect.gen(function* () {
      expect(yield* Serve.parseListen("0.0.0.0:9464")).toEqual({ host: "0.0.0.0", port: 9464 })
      expect(yield* Serve.parseListen("[::1]:0")).toEqual({ host: "::1", port: 0 })
      expect(yield* Serve.parseListen("localhost:80")).toEqual({ host: "localhost", port: 80 })
      for (const bad of ["9464", "::1:9464", "host:", "host:70000", "[::1]"]) {
        const error = yield* Effect.flip(Serve.parseListen(bad))
        expect(error.message).toBe(
          `--listen must be HOST:PORT (e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::]:9464), not ${JSON.stringify(bad)}`
        )
      }
    })
  )
})

describe("MetricsExport.layer", () => {
  it.scopedLive("puts the walker's series on an application's own OpenTelemetry reader, fresh at each collection", () =>
    Effect.gen(function* () {
      const root = procRoot("3\n", "100\n")
      const walker = yield* FlowWalker.make({ procRoot: root }).pipe(
        Effect.provide(Scripted.layer({ dump: [Scripted.dumpRun([v4, v6])] }))
      )
      yield* walker.ready
      const reader = new PrometheusExporter({ preventServerStart: true })
      yield* Layer.build(
        MetricsExport.layer(() => reader, { procRoot: root }).pipe(
          Layer.provide(
            Layer.mergeAll(
              Layer.succeed(FlowWalker.FlowWalker, walker),
              NodeContext.layer,
              Resource.layer({ serviceName: "app" })
            )
          )
        )
      )
      const page = async () => new PrometheusSerializer().serialize((await reader.collect()).resourceMetrics)
      const text = yield* Effect.promise(page)
      expect(samples(text, "conntrack_table_entries")['{otel_scope_name="@effect/opentelemetry/Metrics"}']).toBe(3)
      expect(
        samples(text, "conntrack_flows")[
          '{family="ipv6",proto="tcp",state="ESTABLISHED",otel_scope_name="@effect/opentelemetry/Metrics"}'
        ]
      ).toBe(1)
      fs.rmSync(root, { recursive: true })
    })
  )
})

describe("README's Running on a fleet", () => {
  it("shows examples/metrics.ts as it is (the example is type-checked with the tests)", () => {
    const root = path.join(import.meta.dirname, "..")
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
    expect(readme).toContain(fs.readFileSync(path.join(root, "examples/metrics.ts"), "utf8").trim())
  })
})
