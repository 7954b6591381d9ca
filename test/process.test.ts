import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"
import * as Conntrack from "../src/Conntrack.js"

// The real Node executor against fixtures/fake-conntrack.sh, which replays recorded output.
const fake = path.join(import.meta.dirname, "..", "fixtures", "fake-conntrack.sh")
const recorded = (name: string) =>
  fs
    .readFileSync(path.join(import.meta.dirname, "..", "fixtures", "recorded", name), "utf8")
    .split("\n")
    .filter((l) => l !== "")

const quiet = Layer.merge(NodeContext.layer, Logger.replace(Logger.defaultLogger, Logger.none))

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const waitUntil = async (check: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return check()
}

const withEnv = <A, E, R>(env: Record<string, string>, effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]))
      Object.assign(process.env, env)
      return saved
    }),
    () => effect,
    (saved) =>
      Effect.sync(() => {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k]
          else process.env[k] = v
        }
      })
  )

describe("conntrack through the Node executor", () => {
  it.live("a dump yields every recorded flow", () =>
    Effect.gen(function* () {
      const flows = yield* Stream.runCollect(Conntrack.dump({ binary: fake }))
      expect(flows.length).toBe(recorded("dump-tcp.txt").length)
    }).pipe(Effect.provide(quiet))
  )

  it.live("a dump runs conntrack under stdbuf -o 65536 (its preload's setting), or as it is with dumpWriteSize 0", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ectx-stdbuf-"))
      // What conntrack's process is given by stdbuf (its preload reads _STDBUF_O), then the recorded dump.
      const binary = path.join(dir, "conntrack")
      const seen = path.join(dir, "seen")
      fs.writeFileSync(binary, `#!/bin/sh\necho "o=$_STDBUF_O" > ${seen}\nexec ${fake} "$@"\n`, { mode: 0o755 })
      try {
        const flows = yield* Stream.runCollect(Conntrack.dump({ binary }))
        expect(flows.length).toBe(recorded("dump-tcp.txt").length)
        expect(fs.readFileSync(seen, "utf8")).toBe("o=65536\n")
        yield* Stream.runCollect(Conntrack.dump({ binary, dumpWriteSize: 0 }))
        expect(fs.readFileSync(seen, "utf8")).toBe("o=\n")
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }).pipe(Effect.provide(quiet))
  )

  it.live("drains stderr: 1 MB of it does not stall the child", () =>
    withEnv(
      { FAKE_STDERR_BYTES: String(1 << 20) },
      Effect.gen(function* () {
        const flows = yield* Stream.runCollect(Conntrack.dump({ binary: fake }))
        expect(flows.length).toBe(recorded("dump-tcp.txt").length)
      })
    ).pipe(Effect.timeout("20 seconds"), Effect.provide(quiet))
  )

  it.live("an event stream delivers its lines as they come, and the child is gone when the scope closes", () =>
    Effect.gen(function* () {
      const lines = recorded("events-tcp.txt")
      const pid = yield* Effect.scoped(
        Effect.gen(function* () {
          const running = yield* Conntrack.start("events", { binary: fake })
          yield* running.listening
          const flows = yield* running.flows.pipe(Stream.take(lines.length), Stream.runCollect)
          expect(Chunk.toReadonlyArray(flows).map((f) => f.id)).toStrictEqual(
            lines.map((l) => Number(/ id=(\d+)(?!.* id=)/.exec(l)?.[1]))
          )
          expect(alive(running.pid)).toBe(true)
          return running.pid
        })
      )
      expect(alive(pid)).toBe(false)
    }).pipe(Effect.provide(quiet))
  )

  it.live("a child that ignores SIGTERM is killed within the stop timeout", () =>
    withEnv(
      { FAKE_IGNORE_TERM: "1" },
      Effect.gen(function* () {
        const started = Date.now()
        let pid = 0
        yield* Effect.scoped(
          Effect.gen(function* () {
            const running = yield* Conntrack.start("events", { binary: fake, stopTimeout: "300 millis" })
            yield* running.listening
            pid = running.pid
          })
        )
        const took = Date.now() - started
        expect(alive(pid)).toBe(false)
        expect(took).toBeLessThan(5000)
      })
    ).pipe(Effect.provide(quiet))
  )

  it("the child dies when our process is SIGKILLed", async () => {
    const node = child.spawn(process.execPath, [path.join(import.meta.dirname, "support", "events-child.mjs"), fake], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    const pid = await new Promise<number>((resolve, reject) => {
      let out = ""
      node.stdout.on("data", (d) => {
        out += d
        const m = /pid (\d+)/.exec(out)
        if (m) resolve(Number(m[1]))
      })
      node.on("exit", () => reject(new Error(`child exited early: ${out}`)))
      setTimeout(() => reject(new Error("no pid from the child")), 10_000)
    })
    expect(alive(pid)).toBe(true)
    node.kill("SIGKILL")
    expect(await waitUntil(() => !alive(pid), 3000)).toBe(true)
  })
})

describe("the fake conntrack itself", () => {
  it("refuses arguments it does not know", () => {
    const result = child.spawnSync(fake, ["-X"], { encoding: "utf8" })
    expect(result.status).toBe(2)
  })
})
