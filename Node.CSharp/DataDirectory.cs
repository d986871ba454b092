using FormalChat.Protocol;

namespace FormalChat.Node;

/// <summary>
/// A node's data directory (--data-dir): created if missing, and held for the node's lifetime
/// through an exclusive lock on <see cref="LockFileName"/>, so two nodes never append to the same
/// logs. The lock is the operating system's (flock), released when the process ends however it
/// ends; the file itself holds the owner's process id for a person to read.
/// </summary>
public sealed class DataDirectory : IDisposable
{
    public const string LockFileName = "node.lock";
    public const string LogExtension = ".log";
    public const string TemporaryExtension = ".tmp";

    private readonly FileStream _lock;

    private DataDirectory(string path, FileStream lockFile)
    {
        Path = path;
        _lock = lockFile;
    }

    public string Path { get; }

    public static DataDirectory Open(string path)
    {
        string full;
        try
        {
            full = System.IO.Path.GetFullPath(path);
            Directory.CreateDirectory(full);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new StorageException($"cannot create the data directory {path}: {error.Message}", error);
        }
        var lockPath = System.IO.Path.Combine(full, LockFileName);
        FileStream lockFile;
        try
        {
            // FileShare.None takes an exclusive flock on Unix: a second node fails here at once.
            lockFile = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException error)
        {
            throw new StorageException($"cannot write in the data directory {full}: {error.Message}", error);
        }
        catch (IOException error)
        {
            throw new StorageException(
                $"cannot lock the data directory {full} ({error.Message}); is another node using it? Every node needs its own --data-dir", error);
        }
        lockFile.SetLength(0);
        lockFile.Write(System.Text.Encoding.ASCII.GetBytes($"{Environment.ProcessId}\n"));
        lockFile.Flush();
        return new DataDirectory(full, lockFile);
    }

    /// <summary>The log of a room: its name without the '#', which the core has already limited to [a-z0-9_-] (or the accounts room's '@accounts').</summary>
    public string LogPath(string room)
    {
        // A broken invariant fails loudly: a room name must never reach outside this directory.
        if (room.Length < 2 || RoomOfFileName(room[1..] + LogExtension) != room) throw new ArgumentException($"not a room name: '{room}'", nameof(room));
        return System.IO.Path.Combine(Path, room[1..] + LogExtension);
    }

    /// <summary>Every room log in the directory as (room, path), by room name; files with other names are not logs.</summary>
    public IReadOnlyList<(string Room, string Path)> Logs()
    {
        var logs = new List<(string Room, string Path)>();
        foreach (var file in Directory.EnumerateFiles(Path, "*" + LogExtension))
        {
            if (RoomOfFileName(System.IO.Path.GetFileName(file)) is { } room) logs.Add((room, file));
        }
        return logs.OrderBy(log => log.Room, StringComparer.Ordinal).ToList();
    }

    /// <summary>Files a log rewrite left behind when the node died before renaming them: the log itself is intact.</summary>
    public IReadOnlyList<string> UnfinishedRewrites() =>
        Directory.EnumerateFiles(Path, "*" + LogExtension + TemporaryExtension).OrderBy(file => file, StringComparer.Ordinal).ToList();

    /// <summary>Makes the names of created and renamed files durable.</summary>
    public void Sync() => DirectorySync.Sync(Path);

    private static string? RoomOfFileName(string fileName)
    {
        if (!fileName.EndsWith(LogExtension, StringComparison.Ordinal)) return null;
        var room = "#" + fileName[..^LogExtension.Length];
        // The accounts room (Protocol.FSharp/Accounts.fs) is the one name with '@': its log is @accounts.log.
        if (room == Accounts.room.Value) return room;
        var valid = Rooms.validateRoomName(room);
        // A name the core would have changed (upper case) is no log this node wrote.
        return valid.IsOk && valid.ResultValue.Value == room ? room : null;
    }

    public void Dispose() => _lock.Dispose();
}
