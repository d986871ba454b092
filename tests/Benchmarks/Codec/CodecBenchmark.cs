using System.Diagnostics;
using FormalChat.Protocol;

namespace FormalChat.Benchmarks.Codec;

/// <summary>
/// `codec [seconds] [case]`: how fast Wire encodes and decodes the two frames of the chat hot path, a
/// peer `sequenced` frame and a client `say` with the `message` reply it becomes, on one thread.
/// Prints operations per second (of wall time and of the process's CPU time) and bytes allocated per operation (the thread's allocation
/// counter, so the figure is exact and not sampled). No network, no node. A third argument runs
/// only the cases whose name contains it (for a profile of one case).
/// </summary>
public static class CodecBenchmark
{
    private static readonly RoomMessage Sample =
        new(Rooms.lobby, 123_456, Nick.NewNick("alice"), 2, "hello everyone, this is a typical chat line of moderate length", 987_654);

    public static int Run(string[] args)
    {
        var seconds = args.Length > 0 && double.TryParse(args[0], out var s) && s is > 0 and <= 60 ? s : 1.0;
        var sequenced = PeerMessage.NewRoomSequenced(Sample);
        var say = ClientRequest.NewSay("#lobby", Sample.Text, Sample.ClientMessageId);
        var reply = ServerReply.NewMessage(Sample);
        var sequencedFrame = Wire.encodePeerMessage(sequenced);
        var sayFrame = Wire.encodeClientRequest(say);
        var replyFrame = Wire.encodeServerReply(reply);

        var cases = new List<(string Name, Func<object> Operation)>();
        cases.Add(("encode peer sequenced", () => Wire.encodePeerMessage(sequenced)));
        cases.Add(("decode peer sequenced", () => Wire.decodePeerMessage(sequencedFrame)));
        cases.Add(("decode client say", () => Wire.decodeClientRequest(sayFrame)));
        cases.Add(("encode client say", () => Wire.encodeClientRequest(say)));
        cases.Add(("encode reply message", () => Wire.encodeServerReply(reply)));
        cases.Add(("decode reply message", () => Wire.decodeServerReply(replyFrame)));
        // What the node does on the socket: bytes in, bytes (one line, newline included) out.
        var sequencedBytes = new ReadOnlyMemory<byte>(System.Text.Encoding.UTF8.GetBytes(sequencedFrame));
        var sayBytes = new ReadOnlyMemory<byte>(System.Text.Encoding.UTF8.GetBytes(sayFrame));
        cases.Add(("utf8: encode peer sequenced", () => Wire.encodePeerMessageLine(sequenced)));
        cases.Add(("utf8: decode peer sequenced", () => Wire.decodePeerMessageUtf8(sequencedBytes)));
        cases.Add(("utf8: decode client say", () => Wire.decodeClientRequestUtf8(sayBytes)));
        cases.Add(("utf8: encode reply message", () => Wire.encodeServerReplyLine(reply)));
        // As the node's loop encodes: one FrameWriter kept from frame to frame.
        var frames = new Wire.FrameWriter();
        cases.Add(("kept writer: encode peer sequenced", () => frames.PeerMessageLine(sequenced)));
        cases.Add(("kept writer: encode reply message", () => frames.ServerReplyLine(reply)));
        // And the node's log record of each message (Node.CSharp/LogRecords.cs), into a reused
        // buffer with the log's kept FrameWriter.
        var records = new System.Buffers.ArrayBufferWriter<byte>(4 * 1024);
        var logFrames = new Wire.FrameWriter();
        cases.Add(("log record of a message", () =>
        {
            records.ResetWrittenCount();
            FormalChat.Node.LogRecords.Write(records, Sample, logFrames);
            return records;
        }));
        if (args.Length > 1) cases.RemoveAll(each => !each.Name.Contains(args[1]));
        // Every case once unmeasured first: the JIT's background compiles and the first GCs would
        // otherwise land on whichever cases come first (CPU time is the whole process's).
        foreach (var (name, operation) in cases) Measure(name, 0.3, operation, print: false);
        Console.WriteLine($"codec: {seconds:0.#} s per case after a warm-up, one thread");
        Console.WriteLine($"{"case",-36} {"ops/s",12} {"ops/CPU-s",12} {"bytes/op",10}");
        foreach (var (name, operation) in cases) Measure(name, seconds, operation, print: true);
        return 0;
    }

    private static void Measure<T>(string name, double seconds, Func<T> operation, bool print)
    {
        T kept = default!;
        // Warm-up for half a second: tiered JIT replaces the first code in the background, and a
        // case measured before that would pay for the order it runs in.
        var warmUp = Stopwatch.StartNew();
        while (warmUp.Elapsed.TotalSeconds < 0.5) for (var i = 0; i < 1_000; i++) kept = operation();
        var operations = 0L;
        var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            for (var i = 0; i < 1_000; i++) kept = operation();
            operations += 1_000;
        }
        var elapsed = clock.Elapsed.TotalSeconds;
        // CPU time as well as wall time: on a shared machine the wall clock also counts the time
        // other processes had the cores, and the process's CPU time does not.
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        GC.KeepAlive(kept);
        if (print) Console.WriteLine($"{name,-36} {operations / elapsed,12:N0} {operations / cpu,12:N0} {allocated / (double)operations,10:N0}");
    }
}
