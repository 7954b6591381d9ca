/**
 * Whether the kernel sends conntrack events in this network namespace: `sys/net/netfilter/nf_conntrack_events`
 * under the proc root reads 1 or 2 (2, the default since Linux 5.19, means "on when someone listens").
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import { EventsDisabled } from "./Errors.js"

export const eventsFile = (procRoot: string): string =>
  `${procRoot.replace(/\/+$/, "")}/sys/net/netfilter/nf_conntrack_events`

/** Succeeds when events are on; fails with `EventsDisabled` (naming the file and what it read) otherwise. */
export const check = (procRoot = "/proc"): Effect.Effect<void, EventsDisabled, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = eventsFile(procRoot)
    const content = yield* fs.readFileString(path).pipe(
      Effect.mapError(
        (error) =>
          new EventsDisabled({
            path,
            reason:
              error._tag === "SystemError" && error.reason === "NotFound"
                ? "does not exist (no nf_conntrack module, or no conntrack in this kernel)"
                : `could not be read (${error.message})`
          })
      )
    )
    const value = content.trim()
    if (value === "1" || value === "2") return
    return yield* new EventsDisabled({
      path,
      content: value,
      reason: value === "0" ? "reads 0" : `reads ${JSON.stringify(value)}, not 1 or 2`
    })
  })
