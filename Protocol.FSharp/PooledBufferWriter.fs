/// A growable byte buffer whose arrays come from ArrayPool, for encoding frames. Utf8JsonWriter
/// asks for room for the worst case of each string (every character escaped), so a fresh
/// ArrayBufferWriter would reallocate for any text of a hundred characters or so; pooled arrays
/// make that free, and a frame costs one array of its exact size.
namespace FormalChat.Protocol

open System
open System.Buffers

[<Sealed>]
type internal PooledBufferWriter(initialCapacity: int) =
    let mutable buffer: byte array = ArrayPool<byte>.Shared.Rent initialCapacity
    let mutable written = 0

    member private _.Ensure(sizeHint: int) =
        let needed = written + max sizeHint 1
        if needed > buffer.Length then
            let larger = ArrayPool<byte>.Shared.Rent(max needed (buffer.Length * 2))
            Buffer.BlockCopy(buffer, 0, larger, 0, written)
            ArrayPool<byte>.Shared.Return buffer
            buffer <- larger

    /// The bytes written so far, in an array of their own.
    member _.ToArray() : byte array = buffer.AsSpan(0, written).ToArray()

    interface IBufferWriter<byte> with
        member _.Advance(count: int) =
            if count < 0 || written + count > buffer.Length then raise (ArgumentOutOfRangeException(nameof count))
            written <- written + count

        member this.GetMemory(sizeHint: int) =
            this.Ensure sizeHint
            Memory<byte>(buffer, written, buffer.Length - written)

        member this.GetSpan(sizeHint: int) =
            this.Ensure sizeHint
            Span<byte>(buffer, written, buffer.Length - written)

    interface IDisposable with
        member _.Dispose() =
            if buffer.Length > 0 then ArrayPool<byte>.Shared.Return buffer
            buffer <- Array.Empty<byte>()
