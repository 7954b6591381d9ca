import * as child from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as KernelSupport from "../src/KernelSupport.js"

const procRoot = (make: (file: string) => void) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "effect-conntrack-ks-"))
  fs.mkdirSync(path.join(root, "sys/net/netfilter"), { recursive: true })
  make(path.join(root, "sys/net/netfilter/nf_conntrack_events"))
  return root
}

describe("KernelSupport.check", () => {
  it.live("a real FIFO at the events path: a clear EventsDisabled at once, not a read that blocks forever", () =>
    Effect.gen(function* () {
      const root = procRoot((file) => child.execFileSync("mkfifo", [file]))
      const result = yield* KernelSupport.check(root).pipe(Effect.flip, Effect.timeoutOption("3 seconds"))
      // A writer unblocks a read the old code may have left pending, so the worker can end.
      const fd = fs.openSync(KernelSupport.eventsFile(root), fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
      fs.closeSync(fd)
      fs.rmSync(root, { recursive: true })
      expect(Option.isSome(result)).toBe(true)
      const error = Option.getOrThrow(result)
      expect(error._tag).toBe("EventsDisabled")
      expect(error.message).toBe(
        `conntrack events are off: ${root}/sys/net/netfilter/nf_conntrack_events is a FIFO, not the kernel's file (is the proc root right?) (turn them on with sysctl -w net.netfilter.nf_conntrack_events=1)`
      )
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.live("a real file reading 2 is fine", () =>
    Effect.gen(function* () {
      const root = procRoot((file) => fs.writeFileSync(file, "2\n"))
      const exit = yield* Effect.exit(KernelSupport.check(root))
      fs.rmSync(root, { recursive: true })
      expect(Exit.isSuccess(exit)).toBe(true)
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.effect("a read that never answers fails with EventsCheckTimeout after 2 seconds", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(KernelSupport.check("/hung"))
      yield* TestClock.adjust("1999 millis")
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.poll(fiber)
      expect(Option.isSome(exit)).toBe(true)
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("EventsCheckTimeout")
      expect(error.message).toBe(
        "could not tell whether conntrack events are on: reading /hung/sys/net/netfilter/nf_conntrack_events took more than 2s (is it a FIFO, or a hung file system?)"
      )
    }).pipe(
      Effect.provide(
        FileSystem.layerNoop({
          stat: () =>
            Effect.succeed({
              type: "File",
              mtime: Option.none(),
              atime: Option.none(),
              birthtime: Option.none(),
              dev: 0,
              ino: Option.none(),
              mode: 0o444,
              nlink: Option.none(),
              uid: Option.none(),
              gid: Option.none(),
              rdev: Option.none(),
              size: FileSystem.Size(0),
              blksize: Option.none(),
              blocks: Option.none()
            }),
          readFileString: () => Effect.never
        })
      )
    )
  )
})
