// Loopback traffic for the kernel tests, run inside a test's own network namespace. Only 127.0.0.0/8 and ::1.
//   serve HOST:PORT ...          echo servers; prints "ready"; runs until killed
//   hold HOST PORT               one connection; prints its local port; closes it when stdin ends
//   burst HOST PORT N PARALLEL   N short connections (connect, one byte each way, close); prints their local ports
//                                (and on stderr how long they took)
import * as net from "node:net"
import * as readline from "node:readline"

const [mode, ...args] = process.argv.slice(2)

const echo = (socket) => {
  socket.on("data", (d) => socket.write(d))
  socket.on("error", () => {})
  socket.on("end", () => socket.end())
}

const connectOnce = (host, port) =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host, port })
    socket.once("error", reject)
    socket.once("connect", () => {
      const local = socket.localPort
      socket.write("x")
      socket.once("data", () => {
        socket.end()
        socket.once("close", () => resolve(local))
      })
    })
  })

if (mode === "serve") {
  let listening = 0
  for (const spec of args) {
    const at = spec.lastIndexOf(":")
    const server = net.createServer(echo)
    server.listen({ host: spec.slice(0, at), port: Number(spec.slice(at + 1)), backlog: 4096 }, () => {
      if (++listening === args.length) console.log("ready")
    })
  }
} else if (mode === "hold") {
  const [host, port] = args
  const socket = net.connect({ host, port: Number(port) })
  socket.on("error", (e) => {
    console.error(String(e))
    process.exit(1)
  })
  socket.on("connect", () => {
    socket.write("x")
    socket.once("data", () => console.log(`port ${socket.localPort}`))
  })
  readline.createInterface({ input: process.stdin }).on("close", () => {
    socket.end()
    socket.on("close", () => process.exit(0))
  })
} else if (mode === "burst") {
  const [host, port, n, parallel] = args
  const total = Number(n)
  const ports = []
  let next = 0
  const worker = async () => {
    while (next < total) {
      next++
      ports.push(await connectOnce(host, Number(port)))
    }
  }
  const start = process.hrtime.bigint()
  await Promise.all(Array.from({ length: Number(parallel) }, worker))
  console.error(`burst took ${Number(process.hrtime.bigint() - start) / 1e9} s`)
  console.log(JSON.stringify(ports))
} else {
  console.error(`traffic.mjs: unknown mode ${mode}`)
  process.exit(2)
}
