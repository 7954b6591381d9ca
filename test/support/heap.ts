// Live heap bytes after a full collection, for the tests that measure memory. `gc` without --expose-gc: the flag, then
// a new context to get the function from.
import * as v8 from "node:v8"
import * as vm from "node:vm"

v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc") as () => void

export const heap = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
