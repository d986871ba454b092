using Microsoft.Win32.SafeHandles;

namespace FormalChat.Node;

/// <summary>
/// One room's log file, open for the node's lifetime. An append is one write at the end of the
/// file, handed to the operating system at once, so a killed process loses none of it; when to
/// fsync is <see cref="RoomLogStore"/>'s decision. A rewrite replaces the whole file atomically.
/// </summary>
public sealed class RoomLog : IDisposable
{
    private SafeFileHandle _file;
    private long _length;

    private RoomLog(string room, string path, SafeFileHandle file, long length)
    {
        Room = room;
        Path = path;
        _file = file;
        _length = length;
    }

    public string Room { get; }
    public string Path { get; }
    public long Length => _length;

    /// <summary>
    /// The open file, for a sync on another thread. A SafeFileHandle in use stays open until that
    /// use ends, even if a rewrite closes it meanwhile.
    /// </summary>
    public SafeFileHandle Handle => _file;

    /// <summary>
    /// Opens a room's log, creating an empty one if there is none, and reads it back. Damage in the
    /// middle is skipped, not cut (<see cref="LogReadBack.Damaged"/>; the log is rewritten once the
    /// node has repaired the room). Whatever follows the last whole record (a torn write, damage
    /// with nothing valid after it) is cut off, so appends continue from a clean end;
    /// <see cref="Recovery.DroppedBytes"/> says how much.
    /// </summary>
    public static (RoomLog Log, Recovery Recovery) Open(string room, string path, int keepLast)
    {
        LogReadBack readBack;
        long fileBytes;
        using (var reading = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 64 * 1024))
        {
            fileBytes = reading.Length;
            readBack = LogRecords.ReadAll(reading, room, keepLast);
            if (readBack.ValidBytes < fileBytes)
            {
                reading.SetLength(readBack.ValidBytes);
                reading.Flush(flushToDisk: true);
            }
        }
        var log = new RoomLog(room, path, OpenForAppending(path), readBack.ValidBytes);
        return (log, new Recovery(readBack, fileBytes - readBack.ValidBytes));
    }

    /// <summary>Writes these records (whole, encoded by <see cref="LogRecords"/>) at the end, in one write.</summary>
    public void Append(ReadOnlySpan<byte> records)
    {
        RandomAccess.Write(_file, records, _length);
        _length += records.Length;
    }

    /// <summary>Forces what was written to the disk (fsync).</summary>
    public void Sync() => RandomAccess.FlushToDisk(_file);

    /// <summary>
    /// The log becomes exactly these records: written to a new file, fsynced, renamed over the
    /// log, and the directory fsynced. A crash at any point leaves either the old log or the new
    /// one, never a mix; a leftover new file is removed at the next start.
    /// </summary>
    public void Rewrite(ReadOnlySpan<byte> records, DataDirectory directory)
    {
        var temporary = Path + DataDirectory.TemporaryExtension;
        using (var file = File.OpenHandle(temporary, FileMode.Create, FileAccess.Write))
        {
            RandomAccess.Write(file, records, 0);
            RandomAccess.FlushToDisk(file);
        }
        File.Move(temporary, Path, overwrite: true);
        directory.Sync();
        var replaced = _file;
        _file = OpenForAppending(Path);
        _length = records.Length;
        replaced.Dispose();
    }

    private static SafeFileHandle OpenForAppending(string path) =>
        File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.Read);

    public void Dispose() => _file.Dispose();

    /// <summary>What opening a log found, and how many bytes after its last whole record it cut off.</summary>
    public sealed record Recovery(LogReadBack ReadBack, long DroppedBytes);
}
