namespace FormalChat.Cluster.Tests.RawClients;

/// <summary>Resident memory of a process from /proc (Linux): the kernel's own high-water mark, so a
/// peak between two samples is not missed.</summary>
public static class ProcessMemory
{
    /// <summary>VmHWM (peak resident set) in MB, or null when the process is gone or /proc is absent.</summary>
    public static double? PeakMegabytes(int pid) => Field(pid, "VmHWM:");

    /// <summary>VmRSS (current resident set) in MB, or null when the process is gone or /proc is absent.</summary>
    public static double? ResidentMegabytes(int pid) => Field(pid, "VmRSS:");

    private static double? Field(int pid, string name)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith(name, StringComparison.Ordinal)) continue;
                var kilobytes = line[name.Length..].Trim().Split(' ')[0];
                return long.Parse(kilobytes) / 1024.0;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
