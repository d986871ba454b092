using System.Buffers;
using FormalChat.CommandLine;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.FSharp.Collections;
using Microsoft.Win32.SafeHandles;

namespace FormalChat.Node;

/// <summary>
/// Every room log of this node, in its data directory, and the --fsync policy over them
/// (docs/REPLICATION.md, "The log on disk"). The event loop carries out AppendToLog and
/// RewriteLog here, and asks for durability before anything leaves the node:
/// <list type="bullet">
/// <item>always: every log written since the last send is fsynced before the next send;</item>
/// <item>batch: each write reaches the operating system before anything leaves the node (a
/// killed process loses nothing it acknowledged), and the logs written since the last heartbeat
/// are fsynced on a background task, so a slow disk never stalls the loop; at shutdown
/// everything is fsynced;</item>
/// <item>never: the operating system decides.</item>
/// </list>
/// Everything but the batch fsync runs on the event loop, and only there. Appends are gathered per
/// room until <see cref="MakeWritesDurable"/>, which the loop calls once a turn before its sends:
/// a turn's messages for one room are one write, not one write (a system call) each.
/// </summary>
public sealed class RoomLogStore : IAsyncDisposable
{
    private readonly DataDirectory _directory;
    private readonly FsyncPolicy _policy;
    private readonly ILogger _log;
    private readonly Dictionary<string, RoomLog> _logs = new();
    private readonly HashSet<RoomLog> _unsynced = new();
    private readonly ArrayBufferWriter<byte> _records = new(64 * 1024);
    private readonly Wire.FrameWriter _frames = new();
    /// <summary>Records appended since the last MakeWritesDurable, per room, in order; written then.</summary>
    private readonly Dictionary<RoomLog, ArrayBufferWriter<byte>> _pending = new();
    private bool _directoryUnsynced;
    private Task _backgroundSync = Task.CompletedTask;
    private volatile StorageException? _backgroundFailure;

    private RoomLogStore(DataDirectory directory, FsyncPolicy policy, ILogger log)
    {
        _directory = directory;
        _policy = policy;
        _log = log;
    }

    public string DirectoryPath => _directory.Path;

    private static readonly Prometheus.Counter DamagedStretchesRead = Prometheus.Metrics.CreateCounter(
        "formalchat_log_damaged_stretches_total", "Damaged stretches in the middle of room logs that recovery skipped.");

    /// <summary>Damaged stretches in the middle of a log skipped at start (each one logged).</summary>
    public int DamagedStretches { get; private set; }

    /// <summary>Every room's log as read back at start, oldest message first: NodeState.recover's input.</summary>
    public FSharpList<Tuple<RoomName, FSharpList<RoomMessage>>> Recovered { get; private set; } = FSharpList<Tuple<RoomName, FSharpList<RoomMessage>>>.Empty;

    /// <summary>Creates and locks the data directory and reads back every room log in it.</summary>
    public static RoomLogStore Open(string dataDirectory, FsyncPolicy policy, ILogger log)
    {
        var directory = DataDirectory.Open(dataDirectory);
        var store = new RoomLogStore(directory, policy, log);
        try
        {
            store.RecoverAll();
            return store;
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            store.CloseFiles();
            throw new StorageException($"cannot read the room logs in {directory.Path}: {error.Message}", error);
        }
        catch
        {
            store.CloseFiles();
            throw;
        }
    }

    /// <summary>Appends the messages, in order, to the room's log. They reach the file with the
    /// turn's other appends to the room, in one write, at the next <see cref="MakeWritesDurable"/>.</summary>
    public void Append(string room, FSharpList<RoomMessage> messages)
    {
        ThrowIfBackgroundSyncFailed();
        var log = LogOf(room);
        if (!_pending.TryGetValue(log, out var records))
        {
            records = new ArrayBufferWriter<byte>(4 * 1024);
            _pending[log] = records;
        }
        foreach (var message in messages) LogRecords.Write(records, message, _frames);
    }

    /// <summary>Hands every gathered append to the operating system: one write per room.</summary>
    private void WritePending()
    {
        foreach (var (log, records) in _pending)
        {
            if (records.WrittenCount == 0) continue;
            WriteAppended(log, records.WrittenSpan);
            records.ResetWrittenCount();
        }
        // Kept for the next turn while few rooms were written; a node serving many rooms frees them.
        if (_pending.Count > 64) _pending.Clear();
    }

    private void WriteAppended(RoomLog log, ReadOnlySpan<byte> records)
    {
        try
        {
            log.Append(records);
        }
        catch (IOException error)
        {
            throw new StorageException($"cannot append to {log.Path}: {error.Message}", error);
        }
        if (!_policy.IsNever) _unsynced.Add(log);
    }

    /// <summary>The room's log becomes exactly these messages (a state transfer); durable on return, whatever the policy.</summary>
    public void Rewrite(string room, FSharpList<RoomMessage> messages)
    {
        ThrowIfBackgroundSyncFailed();
        var log = LogOf(room);
        // Appends before the rewrite go first, as they came (the rewrite then replaces them).
        WritePending();
        Encode(messages);
        try
        {
            log.Rewrite(_records.WrittenSpan, _directory);
        }
        catch (IOException error)
        {
            throw new StorageException($"cannot rewrite {log.Path}: {error.Message}", error);
        }
        _unsynced.Remove(log);
    }

    /// <summary>
    /// Called before anything leaves the node, once a turn: writes the turn's appends (one write
    /// per room), and under --fsync always fsyncs every log written since the last call, so no
    /// acknowledgement goes out for a message that is not on the disk (group commit).
    /// </summary>
    public void MakeWritesDurable()
    {
        ThrowIfBackgroundSyncFailed();
        WritePending();
        if (!_policy.IsAlways || (_unsynced.Count == 0 && !_directoryUnsynced)) return;
        try
        {
            if (_directoryUnsynced) _directory.Sync();
            _directoryUnsynced = false;
            foreach (var log in _unsynced) log.Sync();
            _unsynced.Clear();
        }
        catch (IOException error)
        {
            throw new StorageException($"cannot fsync the room logs in {_directory.Path}: {error.Message}", error);
        }
    }

    /// <summary>Under --fsync batch, starts an fsync of the logs written since the last one, unless one is still running.</summary>
    public void HeartbeatTicked()
    {
        ThrowIfBackgroundSyncFailed();
        if (!_policy.IsBatch || (_unsynced.Count == 0 && !_directoryUnsynced) || !_backgroundSync.IsCompleted) return;
        var files = _unsynced.Select(log => (log.Path, log.Handle)).ToList();
        var directory = _directoryUnsynced;
        _unsynced.Clear();
        _directoryUnsynced = false;
        _backgroundSync = Task.Run(() => SyncInBackground(files, directory));
    }

    private void SyncInBackground(List<(string Path, SafeFileHandle Handle)> files, bool directory)
    {
        try
        {
            if (directory) _directory.Sync();
            foreach (var (path, handle) in files)
            {
                try { RandomAccess.FlushToDisk(handle); }
                // A rewrite closed it after fsyncing the file that replaced it: nothing left to do.
                catch (ObjectDisposedException) { }
                catch (IOException error) { throw new IOException($"{path}: {error.Message}", error); }
            }
        }
        catch (IOException error)
        {
            // After a failed fsync the kernel may have dropped the pages: retrying cannot be trusted.
            _backgroundFailure = new StorageException($"an fsync of the room logs failed, {error.Message}", error);
        }
    }

    private void ThrowIfBackgroundSyncFailed()
    {
        if (_backgroundFailure is { } failure) throw failure;
    }

    private RoomLog LogOf(string room)
    {
        if (_logs.TryGetValue(room, out var log)) return log;
        var path = _directory.LogPath(room);
        try
        {
            (log, _) = RoomLog.Open(room, path, keepLast: 0);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new StorageException($"cannot create {path}: {error.Message}", error);
        }
        _logs[room] = log;
        // A new file's name must be durable too, or a power cut could lose the whole log.
        if (!_policy.IsNever) _directoryUnsynced = true;
        return log;
    }

    private void Encode(FSharpList<RoomMessage> messages)
    {
        _records.ResetWrittenCount();
        foreach (var message in messages) LogRecords.Write(_records, message, _frames);
    }

    private void RecoverAll()
    {
        foreach (var leftover in _directory.UnfinishedRewrites())
        {
            File.Delete(leftover);
            _log.LogWarning("removed {File}: a log rewrite that did not finish before the node stopped (the log it was to replace is intact)", leftover);
        }
        var recovered = new List<Tuple<RoomName, FSharpList<RoomMessage>>>();
        foreach (var (room, path) in _directory.Logs())
        {
            // Only the newest messages can be in a room's history (Rooms.historyCapacity), so
            // only they are kept in memory, however long the file has grown.
            var (log, recovery) = RoomLog.Open(room, path, keepLast: Rooms.historyCapacity);
            _logs[room] = log;
            var readBack = recovery.ReadBack;
            if (recovery.DroppedBytes > 0)
            {
                _log.LogWarning(
                    "{Path}: dropped the last {Dropped} bytes, after {Records} whole records ({Valid} bytes), at {Reason}; the log now ends after its last whole record",
                    path, recovery.DroppedBytes, readBack.Records, readBack.ValidBytes, readBack.StoppedBecause);
            }
            foreach (var stretch in readBack.Damaged)
            {
                DamagedStretches++;
                DamagedStretchesRead.Inc();
                _log.LogWarning(
                    "{Path}: room {Room} is damaged at byte {Offset}: skipped {Bytes} bytes ({Reason}); missing seqs {Missing}; the intact records after it are kept and the missing ones fetched from a replica",
                    path, room, stretch.Offset, stretch.Bytes, stretch.Reason, stretch.MissingSeqs);
            }
            if (readBack.Damaged.Count > 0 && !HasGap(readBack.Messages))
            {
                // The damage cost no message this node keeps (bytes that were no record, or seqs
                // older than the history it keeps): nothing to fetch, so the node would never
                // rewrite the log (LogRepair.repairDamaged); it is rewritten whole now instead.
                Encode(ListModule.OfSeq(readBack.Messages));
                log.Rewrite(_records.WrittenSpan, _directory);
                _log.LogWarning("{Path}: rewritten without the damaged stretches; no message it keeps was missing", path);
            }
            _log.LogInformation("recovered {Room}: {Count} messages (last seq {LastSeq})", room, readBack.Records, readBack.LastSeq);
            recovered.Add(Tuple.Create(RoomName.NewRoomName(room), ListModule.OfSeq(readBack.Messages)));
        }
        Recovered = ListModule.OfSeq(recovered);
    }

    /// <summary>Whether seqs are missing between two of these messages (oldest first).</summary>
    private static bool HasGap(IReadOnlyList<RoomMessage> messages)
    {
        for (var i = 1; i < messages.Count; i++)
        {
            if (messages[i].Seq != messages[i - 1].Seq + 1) return true;
        }
        return false;
    }

    private void CloseFiles()
    {
        foreach (var log in _logs.Values) log.Dispose();
        _logs.Clear();
        _directory.Dispose();
    }

    /// <summary>Waits for a running batch fsync, fsyncs what is left (unless --fsync never), and closes every file.</summary>
    public async ValueTask DisposeAsync()
    {
        await _backgroundSync.ConfigureAwait(false);
        if (_backgroundFailure is { } failure) _log.LogError("{Reason}", failure.Message);
        try
        {
            WritePending();
            if (!_policy.IsNever)
            {
                if (_directoryUnsynced) _directory.Sync();
                foreach (var log in _unsynced) log.Sync();
            }
        }
        catch (Exception error) when (error is IOException or StorageException)
        {
            _log.LogError("the last write or fsync of the room logs in {Directory} failed: {Reason}", _directory.Path, error.Message);
        }
        _unsynced.Clear();
        CloseFiles();
    }
}
