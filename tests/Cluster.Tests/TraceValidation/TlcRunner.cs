using System.Diagnostics;

namespace FormalChat.Cluster.Tests.TraceValidation;

/// <summary>
/// Runs TLC on spec/TraceFormalChat.tla for one merged trace. TLC is the jar at
/// $TLA2TOOLS_JAR, /opt/tlaplus/tla2tools.jar or ~/.cache/tlaplus/tla2tools.jar (ci/tlc.sh looks
/// in the same places), run by `java` with one worker: the machines these tests run on are shared.
/// </summary>
public static class TlcRunner
{
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(3);

    public sealed record Result(bool Accepted, string Output, TimeSpan Elapsed);

    /// <summary>The jar, or null when there is none (then the trace tests are skipped).</summary>
    public static string? FindJar()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return new[]
            {
                Environment.GetEnvironmentVariable("TLA2TOOLS_JAR"),
                "/opt/tlaplus/tla2tools.jar",
                Path.Combine(home, ".cache", "tlaplus", "tla2tools.jar"),
            }
            .FirstOrDefault(path => !string.IsNullOrEmpty(path) && File.Exists(path));
    }

    public static string SpecDirectory()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "FormalChat.sln"))) directory = directory.Parent;
        return Path.Combine(directory?.FullName ?? throw new InvalidOperationException("FormalChat.sln not found above the test binaries"), "spec");
    }

    /// <summary>Checks the merged trace at <paramref name="tracePath"/>; TLC's files go to
    /// <paramref name="workDirectory"/>. Accepted only when TLC says TRACE ACCEPTED and exits 0.</summary>
    public static async Task<Result> ValidateAsync(string jar, string tracePath, string workDirectory)
    {
        var spec = SpecDirectory();
        var config = Path.Combine(workDirectory, "TraceFormalChat.cfg");
        var template = await File.ReadAllLinesAsync(Path.Combine(spec, "TraceFormalChat.cfg"));
        await File.WriteAllLinesAsync(config, template.Select(line =>
            line.TrimStart().StartsWith("TraceFile =", StringComparison.Ordinal) ? $"    TraceFile = \"{tracePath}\"" : line));
        var start = new ProcessStartInfo("java")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workDirectory,
        };
        foreach (var argument in new[]
                 {
                     "-XX:+UseSerialGC", "-cp", jar, "tlc2.TLC", "-workers", "1", "-nowarning",
                     "-metadir", Path.Combine(workDirectory, "states"), "-config", config,
                     Path.Combine(spec, "TraceFormalChat.tla"),
                 })
        {
            start.ArgumentList.Add(argument);
        }
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("java did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(Budget);
        try { await process.WaitForExitAsync(deadline.Token); }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"TLC did not finish within {Budget.TotalMinutes} min on {tracePath}");
        }
        var text = await output + await errors;
        return new Result(process.ExitCode == 0 && text.Contains("TRACE ACCEPTED"), text, clock.Elapsed);
    }

    /// <summary>Whether `java` runs at all.</summary>
    public static bool JavaAvailable()
    {
        try
        {
            using var java = Process.Start(new ProcessStartInfo("java", "-version") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false });
            if (java is null) return false;
            java.WaitForExit(20_000);
            return java.HasExited && java.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }
}
