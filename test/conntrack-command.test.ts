// How conntrack is started (src/internal/conntrackCommand.ts): stdbuf for a dump's write size, setpriv around it, and
// the PATH lookup that decides whether stdbuf is there.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { findOnPath, hasStdbuf, wrapped } from "../src/internal/conntrackCommand.js"

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

  it("hasStdbuf says whether stdbuf is on a PATH", () => {
    expect(hasStdbuf(dir)).toBe(false)
    expect(hasStdbuf("/usr/bin:/bin")).toBe(fs.existsSync("/usr/bin/stdbuf") || fs.existsSync("/bin/stdbuf"))
  })
})
