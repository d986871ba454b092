using System.Diagnostics;
using System.Text.RegularExpressions;
using FormalChat.Cluster.Tests;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// One ngircd process in the foreground (-n, logging to its console), passive (-p: no links to
/// other servers), on a free loopback port, with tests/Benchmarks/ngircd.conf. Disposal kills it.
/// </summary>
public sealed partial class NgircdServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly List<string> _output = new();

    private NgircdServer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

    public int Port { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public string[] Output { get { lock (_output) return _output.ToArray(); } }

    /// <summary>The ngircd binary; installs the Debian package when it is missing and this runs as root.</summary>
    public static string? FindOrInstall(out string? why)
    {
        why = null;
        if (Find() is { } found) return found;
        if (!Environment.IsPrivilegedProcess)
        {
            why = "ngircd is not installed (apt-get install ngircd as root)";
            return null;
        }
        Console.WriteLine("ngircd not found: apt-get install -y ngircd");
        var install = new ProcessStartInfo("apt-get", ["install", "-y", "ngircd"]) { UseShellExecute = false };
        install.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(install)!;
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            why = "apt-get install ngircd took over 5 minutes";
            return null;
        }
        if (Find() is { } installed) return installed;
        why = $"apt-get install ngircd failed (exit {process.ExitCode})";
        return null;
    }

    private static string? Find() =>
        new[] { "/usr/sbin", "/usr/local/sbin" }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            .Select(directory => Path.Combine(directory, "ngircd"))
            .FirstOrDefault(File.Exists);

    public static async Task<NgircdServer> StartAsync(string binary)
    {
        var directory = Directory.CreateTempSubdirectory("formalchat-ngircd-").FullName;
        var port = Ports.FreeTcp();
        var template = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "ngircd.conf"));
        var config = Path.Combine(directory, "ngircd.conf");
        await File.WriteAllTextAsync(config, PortsLine().Replace(template, $"\tPorts = {port}"));

        var start = new ProcessStartInfo(binary, ["-n", "-p", "-f", config])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(start) ?? throw new InvalidOperationException("ngircd did not start");
        ChildProcesses.Track(process.Id);
        var server = new NgircdServer(process, directory, port);
        process.OutputDataReceived += (_, line) => server.Keep(line.Data);
        process.ErrorDataReceived += (_, line) => server.Keep(line.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Eventually.TrueAsync(async () => !process.HasExited && await Ports.Accepts(port), TimeSpan.FromSeconds(15),
                $"ngircd listening on 127.0.0.1:{port}", () => string.Join("\n", server.Output.TakeLast(20)));
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_output) _output.Add(line);
    }

    [GeneratedRegex(@"^[ \t]*Ports[ \t]*=.*$", RegexOptions.Multiline)]
    private static partial Regex PortsLine();

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        ChildProcesses.Untrack(_process.Id);
        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
