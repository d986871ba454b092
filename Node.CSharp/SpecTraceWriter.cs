using System.Diagnostics;
using System.Text;
using Microsoft.FSharp.Collections;
using FormalChat.Protocol;
using static FormalChat.Protocol.NodeState;
using State = FormalChat.Protocol.NodeState.NodeState;

namespace FormalChat.Node;

/// <summary>
/// --trace-file: one NDJSON line per spec action this node takes (SpecTrace.actionsOf), for trace
/// validation with TLC (spec/TraceFormalChat.tla, spec/README.md). Written through a buffer that
/// the loop flushes at the end of each turn, before the turn's effects are carried out: a
/// message a peer receives has its send on disk even if this node is killed right after.
/// The replication lines (ReplicationTrace.linesOf, spec/TraceReplication.tla) go to a file of
/// their own beside it, PATH.replication, written the same way; the placement lines
/// (PlacementTrace.linesOf, spec/TracePlacement.tla) to PATH.placement.
/// </summary>
internal sealed class SpecTraceWriter : IDisposable
{
    private readonly StreamWriter _writer;
    private readonly StreamWriter _replication;
    private readonly StreamWriter _placement;
    private readonly int _suspectAfter;
    private long _steps;

    public SpecTraceWriter(string path, int suspectAfter)
    {
        _suspectAfter = suspectAfter;
        _writer = Open(path);
        _replication = Open(path + ".replication");
        _placement = Open(path + ".placement");
    }

    /// <summary>One step of the loop: counted always, written when it took spec actions.</summary>
    public void Stepped(Event next, State before, State after, FSharpList<Effect> effects)
    {
        _steps++;
        if (before.Stopped) return;
        foreach (var line in ReplicationTrace.linesOf(_steps, Stopwatch.GetTimestamp(), next, before, after, effects))
        {
            _replication.WriteLine(line);
        }
        foreach (var line in PlacementTrace.linesOf(_steps, Stopwatch.GetTimestamp(), next, before, after, effects))
        {
            _placement.WriteLine(line);
        }
        // Client events never take a spec action (only coordinate changes the Coordination).
        if (!(next.IsTicked || next.IsPeerMessageReceived || next.IsShutdownRequested)
            && ReferenceEquals(before.Coordination, after.Coordination)) return;
        var clock = Stopwatch.GetTimestamp();
        foreach (var action in SpecTrace.actionsOf(_suspectAfter, next, before.Coordination, after.Coordination))
        {
            _writer.WriteLine(SpecTrace.toJsonLine(_steps, clock, action));
        }
    }

    public void Flush()
    {
        _writer.Flush();
        _replication.Flush();
        _placement.Flush();
    }

    public void Dispose()
    {
        _writer.Dispose();
        _replication.Dispose();
        _placement.Dispose();
    }

    private static StreamWriter Open(string path) =>
        new(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 1 << 16);
}
