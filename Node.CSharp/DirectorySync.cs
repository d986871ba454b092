using System.Runtime.InteropServices;

namespace FormalChat.Node;

/// <summary>
/// fsync of a directory, which makes a created or renamed file's name durable. .NET opens no
/// directory as a file, so this calls open/fsync/close from the C library ("libc", which the
/// runtime maps to libc.so.6 on Linux). On Windows there is nothing to do: NTFS journals renames.
/// </summary>
public static class DirectorySync
{
    private const int ReadOnly = 0; // O_RDONLY: a directory can be fsynced through a read-only descriptor.

    public static void Sync(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        var descriptor = Open(directory, ReadOnly);
        if (descriptor < 0) throw new IOException($"cannot open the directory {directory} to sync it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (Fsync(descriptor) != 0) throw new IOException($"fsync of the directory {directory} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = Close(descriptor);
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int descriptor);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int descriptor);
}
