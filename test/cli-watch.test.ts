import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import * as Scripted from "../src/testing.js"
import { cli, procRootWith, sleepingUntil } from "./support/cli.js"

const flowA = Scripted.tcpFlow({ id: 1, sport: 40001, dport: 80 })
const flowB = (state: string, type: "UPDATE" | "DESTROY") =>
  Scripted.tcpFlow({
    id: 2,
    sport: 40002,
    dport: 9201,
    dst: "127.0.0.2",
    state,
    type,
    reply: { src: "127.0.0.1", sport: 9401 }
  })

const script: Scripted.Script = {
  // The first dump is the command's own check that conntrack runs; the second is the walker's.
  dump: [Scripted.dumpRun([flowA]), Scripted.dumpRun([flowA])],
  events: [
    Scripted.eventsRun([
      { sleep: "1500 millis" },
      flowB("ESTABLISHED", "UPDATE"),
      { sleep: "1 second" },
      flowB("CLOSE", "DESTROY")
    ])
  ]
}

/** Runs `watch` for `walks` seconds, then stops it as Ctrl-C would. */
const watch = (args: ReadonlyArray<string>, walks: number, interval = 1000) =>
  Effect.gen(function* () {
    const procRoot = procRootWith("2\n")
    const run = cli(["watch", "--proc-root", procRoot, ...args], { script })
    const fiber = yield* Effect.fork(run.effect)
    // The walker has dumped (its first walk's sleep is then the one pending at `interval`).
    for (let k = 0; k < 5_000 && !(yield* run.spawned).some((p) => p.kind === "dump"); k++) {
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    }
    yield* sleepingUntil(interval)
    for (let k = 0; k < walks; k++) yield* TestClock.adjust("1 second")
    yield* Fiber.interrupt(fiber)
    fs.rmSync(procRoot, { recursive: true })
    return { stdout: run.stdout(), stderr: run.stderr() }
  })

describe("effect-conntrack watch", () => {
  it.effect("prints each walk as a table, with the reply side of NAT'ed flows and closed flows once", () =>
    Effect.gen(function* () {
      const { stdout } = yield* watch([], 4)
      expect(stdout).toBe(
        [
          "walk 1: 1 active, 0 closed since the last walk",
          "PROTO  STATE        ORIGINAL                         REPLY (NAT)  STATUS",
          "tcp    ESTABLISHED  127.0.0.1:40001 -> 127.0.0.1:80               active",
          "walk 2: 2 active, 0 closed since the last walk",
          "PROTO  STATE        ORIGINAL                           REPLY (NAT)                        STATUS",
          "tcp    ESTABLISHED  127.0.0.1:40001 -> 127.0.0.1:80                                       active",
          "tcp    ESTABLISHED  127.0.0.1:40002 -> 127.0.0.2:9201  127.0.0.1:9401 -> 127.0.0.1:40002  active",
          "walk 3: 1 active, 1 closed since the last walk",
          "PROTO  STATE        ORIGINAL                           REPLY (NAT)                        STATUS",
          "tcp    ESTABLISHED  127.0.0.1:40001 -> 127.0.0.1:80                                       active",
          "tcp    CLOSE        127.0.0.1:40002 -> 127.0.0.2:9201  127.0.0.1:9401 -> 127.0.0.1:40002  closed",
          "walk 4: 1 active, 0 closed since the last walk",
          "PROTO  STATE        ORIGINAL                         REPLY (NAT)  STATUS",
          "tcp    ESTABLISHED  127.0.0.1:40001 -> 127.0.0.1:80               active",
          ""
        ].join("\n")
      )
    })
  )

  it.effect("--json prints one object per walked flow with walk, active and flow", () =>
    Effect.gen(function* () {
      const { stdout } = yield* watch(["--json", "--interval", "2 seconds"], 4, 2000)
      const lines = stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
      expect(lines.map((l) => [l.walk, l.active, l.flow.id])).toStrictEqual([
        [1, true, 1],
        [1, true, 2],
        [2, true, 1],
        [2, false, 2]
      ])
      expect(lines[1].flow.reply).toStrictEqual({ src: "127.0.0.1", dst: "127.0.0.1", sport: 9401, dport: 40002 })
    })
  )

  it.effect("passes the protocol, buffer size and extra arguments to conntrack", () =>
    Effect.gen(function* () {
      const procRoot = procRootWith("1\n")
      const run = cli(
        ["watch", "--proc-root", procRoot, "--proto", "udp", "--buffer-size", "65536", "--", "--zone", "3"],
        {
          script
        }
      )
      const fiber = yield* Effect.fork(run.effect)
      yield* sleepingUntil(1000)
      for (let k = 0; k < 5_000 && (yield* run.spawned).length < 2; k++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
      }
      const spawned = yield* run.spawned
      yield* Fiber.interrupt(fiber)
      fs.rmSync(procRoot, { recursive: true })
      // One dump at start: the walker's own (no throwaway check before it).
      // conntrack's own arguments, after what runs it (setpriv, and stdbuf for a dump).
      expect(spawned.map((s) => s.args.slice(s.args.indexOf("conntrack") + 1).join(" "))).toStrictEqual([
        "--buffer-size 65536 -E -o id -p udp --zone 3",
        "-L -o id -p udp --zone 3"
      ])
    })
  )
})

describe("errors a user can cause: one sentence with the fix, non-zero exit", () => {
  const failing = (args: ReadonlyArray<string>, s: Scripted.Script = script) =>
    Effect.gen(function* () {
      const run = cli(args, { script: s })
      const exit = yield* run.effect
      expect(Exit.isFailure(exit)).toBe(true)
      return run.stderr()
    })

  it.effect("events disabled", () =>
    Effect.gen(function* () {
      const procRoot = procRootWith("0\n")
      const stderr = yield* failing(["watch", "--proc-root", procRoot])
      expect(stderr).toBe(
        `effect-conntrack: conntrack events are off: ${path.join(procRoot, "sys/net/netfilter/nf_conntrack_events")} reads 0 (turn them on with sysctl -w net.netfilter.nf_conntrack_events=1)\n`
      )
    })
  )

  it.effect("no conntrack binary", () =>
    Effect.gen(function* () {
      const stderr = yield* failing(["dump", "--conntrack", "/opt/none/conntrack"], {
        dump: [
          {
            steps: [
              { stderr: "setpriv: failed to execute /opt/none/conntrack: No such file or directory" },
              { exit: 127 }
            ]
          }
        ]
      })
      expect(stderr).toBe(
        "effect-conntrack: /opt/none/conntrack was not found: install the conntrack package (e.g. apt-get install conntrack) or give its path\n"
      )
    })
  )

  it.effect("no privilege", () =>
    Effect.gen(function* () {
      const refusal =
        "conntrack v1.4.7 (conntrack-tools): Operation failed: sorry, you must be root or get CAP_NET_ADMIN capability to do this"
      const stderr = yield* failing(["dump"], { dump: [{ steps: [{ stderr: refusal }, { exit: 1 }] }] })
      expect(stderr).toBe(
        `effect-conntrack: conntrack -L -o id -p tcp was refused: run as root or give the process CAP_NET_ADMIN (${refusal})\n`
      )
    })
  )

  it.effect("watch without privilege fails from the walker's first attempt, without a dump of its own", () =>
    Effect.gen(function* () {
      const procRoot = procRootWith("1\n")
      const refusal = "Can't open netlink socket: Operation not permitted"
      const run = cli(["watch", "--proc-root", procRoot], {
        script: { events: [{ steps: [{ stderr: refusal }, { exit: 1 }] }] }
      })
      const exit = yield* run.effect
      fs.rmSync(procRoot, { recursive: true })
      expect(Exit.isFailure(exit)).toBe(true)
      expect(run.stderr()).toContain(`effect-conntrack: conntrack --buffer-size 33554432 -E -o id -p tcp was refused`)
      expect((yield* run.spawned).map((s) => s.kind)).toStrictEqual(["events"])
    })
  )

  it.effect("an unknown flag is refused, not passed to conntrack", () =>
    Effect.gen(function* () {
      const run = cli(["dump", "--zone", "3"], { script })
      const exit = yield* run.effect
      expect(Exit.isFailure(exit)).toBe(true)
      expect(yield* run.spawned).toStrictEqual([])
    })
  )

  it.effect("a bad flag", () =>
    Effect.gen(function* () {
      const run = cli(["watch", "--interval", "soon"], { script })
      const exit = yield* run.effect
      expect(Exit.isFailure(exit)).toBe(true)
      expect(run.stdout() + run.stderr()).toContain('--interval must be a positive duration such as "250 millis"')
    })
  )
})

describe("effect-conntrack dump", () => {
  const dumped = [
    flowA,
    Scripted.tcpFlow({ id: 3, sport: 40003, dport: 443, state: "TIME_WAIT", src: "::1", dst: "::1" })
  ]

  it.effect("prints a table", () =>
    Effect.gen(function* () {
      const run = cli(["dump"], { script: { dump: [Scripted.dumpRun(dumped)] } })
      expect(Exit.isSuccess(yield* run.effect)).toBe(true)
      expect(run.stdout()).toBe(
        [
          "PROTO  STATE        ORIGINAL                         REPLY (NAT)",
          "tcp    ESTABLISHED  127.0.0.1:40001 -> 127.0.0.1:80",
          "tcp    TIME_WAIT    [::1]:40003 -> [::1]:443",
          ""
        ].join("\n")
      )
    })
  )

  it.effect("--count prints how many flows, by state", () =>
    Effect.gen(function* () {
      const run = cli(["dump", "--count"], { script: { dump: [Scripted.dumpRun([...dumped, flowA])] } })
      yield* run.effect
      expect(run.stdout()).toBe("3 flows\nESTABLISHED 2\nTIME_WAIT 1\n")
      const json = cli(["dump", "--count", "--json"], { script: { dump: [Scripted.dumpRun(dumped)] } })
      yield* json.effect
      expect(JSON.parse(json.stdout())).toStrictEqual({ total: 2, byState: { ESTABLISHED: 1, TIME_WAIT: 1 } })
    })
  )

  it.effect("--json prints one flow per line", () =>
    Effect.gen(function* () {
      const run = cli(["dump", "--json"], { script: { dump: [Scripted.dumpRun(dumped)] } })
      yield* run.effect
      expect(
        run
          .stdout()
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l).id)
      ).toStrictEqual([1, 3])
    })
  )
})

describe("effect-conntrack --help", () => {
  it.effect("documents every command and flag", () =>
    Effect.gen(function* () {
      for (const [command, flags] of [
        [
          "watch",
          [
            "--json",
            "--interval",
            "--proto",
            "--buffer-size",
            "--proc-root",
            "--conntrack",
            "--dump-arg",
            "--event-arg",
            "after --"
          ]
        ],
        ["dump", ["--json", "--count", "--proto", "--proc-root", "--conntrack", "--dump-arg"]],
        ["parse", ["--format", "--count", "FILE"]]
      ] as const) {
        const run = cli([command, "--help"])
        yield* run.effect
        for (const flag of flags) expect(run.stdout()).toContain(flag)
      }
    })
  )
})
