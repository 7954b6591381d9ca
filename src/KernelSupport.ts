/**
 * Whether the kernel sends conntrack events in this network namespace: `sys/net/netfilter/nf_conntrack_events`
 * under the proc root reads 1 or 2 (2, the default since Linux 5.19, means "on when someone listens").
 *
 * The check is bounded in time and interruptible, so that it can be repeated on a timer: anything but a regular
 * file (a FIFO would block the read forever, and a blocked read holds one of libuv's few threads) is refused before
 * it is opened, and a read that does not answer within `timeout` fails with `EventsCheckTimeout`.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { EventsCheckTimeout, EventsDisabled } from "./Errors.js"

export const eventsFile = (procRoot: string): string =>
  `${procRoot.replace(/\/+$/, "")}/sys/net/netfilter/nf_conntrack_events`

/** How long the check waits for the file by default. */
export const defaultTimeout: Duration.Duration = Duration.seconds(2)

/**
 * Succeeds when events are on; fails with `EventsDisabled` (naming the file and what it read) otherwise, or with
 * `EventsCheckTimeout` when the file does not answer within `timeout` (default 2 seconds).
 */
export const check = (
  procRoot = "/proc",
  timeout: Duration.DurationInput = defaultTimeout
): Effect.Effect<void, EventsDisabled | EventsCheckTimeout, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = eventsFile(procRoot)
    const unreadable = (error: { readonly _tag: string; readonly message: string; readonly reason?: string }) =>
      new EventsDisabled({
        path,
        reason:
          error._tag === "SystemError" && error.reason === "NotFound"
            ? "does not exist (no nf_conntrack module, or no conntrack in this kernel)"
            : `could not be read (${error.message})`
      })
    const info = yield* fs.stat(path).pipe(Effect.mapError(unreadable))
    if (info.type !== "File") {
      return yield* new EventsDisabled({
        path,
        reason: `is a ${info.type === "FIFO" ? "FIFO" : info.type.toLowerCase()}, not the kernel's file (is the proc root right?)`
      })
    }
    const content = yield* fs.readFileString(path).pipe(Effect.mapError(unreadable))
    const value = content.trim()
    if (value === "1" || value === "2") return
    return yield* new EventsDisabled({
      path,
      content: value,
      reason: value === "0" ? "reads 0" : `reads ${JSON.stringify(value)}, not 1 or 2`
    })
  }).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new EventsCheckTimeout({ path: eventsFile(procRoot), timeout: Duration.decode(timeout) })
    })
  )
