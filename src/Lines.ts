/**
 * Bytes to lines, a chunk at a time: one `TextDecoder` in streaming mode and `indexOf`, with no per-line effect.
 * (Effect's `decodeText` + `splitLines` cost several microseconds per line, as much as parsing it.)
 */
import * as Chunk from "effect/Chunk"
import * as Stream from "effect/Stream"

/** A splitter of a byte stream into lines: `push` each chunk, then `end`. Lines end with `\n` or `\r\n`. */
export interface LineSplitter {
  readonly push: (bytes: Uint8Array, into: Array<string>) => void
  readonly end: (into: Array<string>) => void
}

export const makeSplitter = (): LineSplitter => {
  const decoder = new TextDecoder()
  let rest = ""
  const emit = (text: string, into: Array<string>) => {
    let start = 0
    let nl = text.indexOf("\n")
    while (nl !== -1) {
      into.push(text.charCodeAt(nl - 1) === 13 && nl > start ? text.slice(start, nl - 1) : text.slice(start, nl))
      start = nl + 1
      nl = text.indexOf("\n", start)
    }
    rest = start === 0 ? text : text.slice(start)
  }
  return {
    push: (bytes, into) => emit(rest + decoder.decode(bytes, { stream: true }), into),
    end: (into) => {
      emit(rest + decoder.decode(), into)
      if (rest !== "") into.push(rest)
      rest = ""
    }
  }
}

/** The lines of a byte stream, one chunk of lines per chunk of bytes (a last line without `\n` included). */
export const splitLines = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<string, E, R> =>
  Stream.suspend(() => {
    const splitter = makeSplitter()
    return bytes.pipe(
      Stream.mapChunks((chunk) => {
        const lines: Array<string> = []
        for (const b of chunk) splitter.push(b, lines)
        return Chunk.unsafeFromArray(lines)
      }),
      Stream.concat(
        Stream.suspend(() => {
          const lines: Array<string> = []
          splitter.end(lines)
          return Stream.fromChunk(Chunk.unsafeFromArray(lines))
        })
      )
    )
  })
