// How conntrack is started (src/internal/conntrackCommand.ts): stdbuf for a dump's write size, setpriv around it, and
// the PATH lookup that decides whether stdbuf is there.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { findOnPath, hasStdbuf, isStdbufFailure, stdbufFailed, wrapped } from "../src/internal/conntrackCommand.js"
import * as Options from "../src/Options.js"

const line = (w: { command: string; args: ReadonlyArray<string> }) => [w.command, ...w.args].join(" ")
const dump = ["-L", "-o", "id"]

describe("wrapped", () => {
  it("puts setpriv first and stdbuf next, so that only conntrack gets stdbuf's preload", () => {
    expect(line(wrapped("conntrack", dump, { dieWithParent: true, writeSize: 65536, stdbuf: true }))).toBe(
      "setpriv --pdeathsig KILL -- stdbuf -o 65536 conntrack -L -o id"
    )
  })
  it("runs conntrack as it is without stdbuf, or with a write size of 0", () => {
    expect(line(wrapped("conntrack", dump, { dieWithParent: true, writeSize: 65536, stdbuf: false }))).toBe(
      "setpriv --pdeathsig KILL -- conntrack -L -o id"
    )
    expect(line(wrapped("/opt/ct", dump, { dieWithParent: false, writeSize: 0, stdbuf: true }))).toBe(
      "/opt/ct -L -o id"
    )
  })
})

describe("findOnPath", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ectx-path-"))
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, "tool"), "#!/bin/sh\n", { mode: 0o755 })
  fs.writeFileSync(path.join(dir, "plain"), "", { mode: 0o644 })
  fs.mkdirSync(path.join(dir, "folder"))

  it("finds an executable file in the PATH's directories, in order, and nothing else", () => {
    expect(findOnPath("tool", `/nonexistent::${dir}`)).toBe(path.join(dir, "tool"))
    expect(findOnPath("plain", dir)).toBeUndefined()
    expect(findOnPath("folder", dir)).toBeUndefined()
    expect(findOnPath("tool", undefined)).toBeUndefined()
    expect(findOnPath("tool", "")).toBeUndefined()
  })

  it("hasStdbuf says whether stdbuf is on a PATH, and no more once it failed there", () => {
    expect(hasStdbuf(dir)).toBe(false)
    const withStdbuf = fs.mkdtempSync(path.join(dir, "bin-"))
    fs.writeFileSync(path.join(withStdbuf, "stdbuf"), "#!/bin/sh\n", { mode: 0o755 })
    expect(hasStdbuf(withStdbuf)).toBe(true)
    stdbufFailed(withStdbuf)
    expect(hasStdbuf(withStdbuf)).toBe(false)
    expect(hasStdbuf(`${withStdbuf}:`)).toBe(true)
  })
})

describe("isStdbufFailure", () => {
  it("is stdbuf's own failure (exit 125) or setpriv's failing to execute it, not conntrack's", () => {
    expect(isStdbufFailure(125, ["stdbuf: failed to find ‘libstdbuf.so’"])).toBe(true)
    expect(isStdbufFailure(125, ["stdbuf: invalid mode ‘1.5’"])).toBe(true)
    expect(isStdbufFailure(127, ["setpriv: failed to execute stdbuf: No such file or directory"])).toBe(true)
    // conntrack missing or not executable: stdbuf says so, but the failure is conntrack's.
    expect(isStdbufFailure(127, ["stdbuf: failed to run command ‘conntrack’: No such file or directory"])).toBe(false)
    expect(isStdbufFailure(126, ["stdbuf: failed to run command ‘conntrack’: Permission denied"])).toBe(false)
    // conntrack's own exit codes, whatever they are, with conntrack's words.
    expect(isStdbufFailure(125, ["conntrack v1.4.7 (conntrack-tools): something"])).toBe(false)
    expect(isStdbufFailure(1, [])).toBe(false)
    expect(isStdbufFailure(undefined, [])).toBe(false)
  })
})

describe("CONNTRACK_DUMP_WRITE_SIZE", () => {
  it.effect("is read as bytes from 0 to 16 MiB; anything else is refused", () =>
    Effect.gen(function* () {
      const read = (value: string) =>
        Effect.either(
          Effect.withConfigProvider(
            Options.config,
            ConfigProvider.fromMap(new Map([["CONNTRACK_DUMP_WRITE_SIZE", value]]), { pathDelim: "_" })
          )
        )
      expect(yield* read("0")).toStrictEqual(Either.right({ dumpWriteSize: 0 }))
      expect(yield* read("16777216")).toStrictEqual(Either.right({ dumpWriteSize: 16777216 }))
      for (const wrong of ["-1", "16777217", "1.5", "64K"]) expect(Either.isLeft(yield* read(wrong))).toBe(true)
      expect(Options.resolve({}).dumpWriteSize).toBe(65536)
    })
  )
})
