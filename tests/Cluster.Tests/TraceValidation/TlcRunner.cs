using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.TraceValidation;

/// <summary>
/// Runs TLC on a trace-validation module of spec/ (TraceFormalChat.tla, TraceReplication.tla, TracePlacement.tla) for
/// one merged trace. TLC is the jar at $TLA2TOOLS_JAR, /opt/tlaplus/tla2tools.jar or
/// ~/.cache/tlaplus/tla2tools.jar (ci/tlc.sh looks in the same places), run by `java` with one
/// worker: the machines these tests run on are shared. Any TLC will do, the v1.7.4 release that
/// hosted CI pins too: the trace reaches TLC as a TLA+ module (TraceData.tla), not through the
/// Json module v1.7.4 lacks, and acceptance is read off TLC's depth, not a POSTCONDITION.
/// </summary>
public static class TlcRunner
{
    private static readonly TimeSpan Budget = TimeSpan.FromMinutes(3);

    /// <summary>The verdict on a trace of <paramref name="Steps"/> lines (the header not
    /// counted): accepted when TLC followed all of them; otherwise line number
    /// <paramref name="Matched"/> + 1 (1-based, after the header) is the first no spec step
    /// could take.</summary>
    public sealed record Result(bool Accepted, int Matched, int Steps, string Output, TimeSpan Elapsed);

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

    /// <summary>Checks the merged NDJSON trace at <paramref name="tracePath"/> (a header line, then
    /// one line per action) against spec/<paramref name="traceModule"/>.tla with its .cfg. TLC runs
    /// on a copy of spec/ in <paramref name="workDirectory"/> whose TraceData.tla holds the trace.</summary>
    public static async Task<Result> ValidateAsync(string jar, string traceModule, string tracePath, string workDirectory)
    {
        var copy = Path.Combine(workDirectory, "spec");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(SpecDirectory()).Where(f => f.EndsWith(".tla", StringComparison.Ordinal) || f.EndsWith(".cfg", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)), overwrite: true);
        }
        var lines = (await File.ReadAllLinesAsync(tracePath)).Where(line => !string.IsNullOrWhiteSpace(line)).ToList();
        await File.WriteAllTextAsync(Path.Combine(copy, "TraceData.tla"), TraceDataModule(lines.Select(JToken.Parse)));
        var start = new ProcessStartInfo("java")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = copy,
        };
        foreach (var argument in new[]
                 {
                     "-XX:+UseSerialGC", "-cp", jar, "tlc2.TLC", "-workers", "1", "-nowarning",
                     "-metadir", Path.Combine(workDirectory, "states"), "-config", traceModule + ".cfg",
                     traceModule + ".tla",
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
        var steps = lines.Count - 1;
        // TraceReplication, TracePlacement: TLC reports TraceMatchedAll violated when it matched every line, and
        // prints <<"matched line", n>> for each line it matched.
        if (text.Contains("Invariant TraceMatchedAll is violated", StringComparison.Ordinal))
        {
            return new Result(true, steps, steps, text, clock.Elapsed);
        }
        var printed = Regex.Matches(text, @"<<""matched line"", (\d+)>>").Select(found => int.Parse(found.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        if (printed.Count > 0 || traceModule != "TraceFormalChat")
        {
            return new Result(false, printed.DefaultIfEmpty(0).Max(), steps, text, clock.Elapsed);
        }
        // TraceFormalChat: "The depth of the complete state graph search is D.": D states, the
        // initial one and one per line TLC could follow (TraceAccepted).
        var depth = Regex.Match(text, @"depth of the complete state graph search is (\d+)");
        var matched = depth.Success ? int.Parse(depth.Groups[1].Value, CultureInfo.InvariantCulture) - 1 : 0;
        return new Result(process.ExitCode == 0 && depth.Success && matched == steps, matched, steps, text, clock.Elapsed);
    }

    /// <summary>Module TraceData: TraceLog, the trace as a TLA+ sequence, one record per line,
    /// as the Json module's ndJsonDeserialize would read it (objects as records, arrays as
    /// sequences).</summary>
    public static string TraceDataModule(IEnumerable<JToken> lines)
    {
        var text = new StringBuilder("---- MODULE TraceData ----\nEXTENDS Integers\nTraceLog == <<\n");
        var first = true;
        foreach (var line in lines)
        {
            text.Append(first ? "    " : "  , ").Append(Tla(line)).Append('\n');
            first = false;
        }
        return text.Append(">>\n====\n").ToString();
    }

    /// <summary>A JSON value in TLA+: records, sequences, integers, strings, booleans.</summary>
    public static string Tla(JToken value) => value switch
    {
        JObject record when record.Count == 0 => "<<>>",
        JObject record => "[" + string.Join(", ", record.Properties().Select(field => $"{field.Name} |-> {Tla(field.Value)}")) + "]",
        JArray sequence => "<<" + string.Join(", ", sequence.Select(Tla)) + ">>",
        JValue { Type: JTokenType.Integer } number => ((long)number).ToString(CultureInfo.InvariantCulture),
        JValue { Type: JTokenType.Boolean } boolean => (bool)boolean ? "TRUE" : "FALSE",
        JValue { Type: JTokenType.String } text => "\"" + ((string)text!).Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"",
        _ => throw new ArgumentException($"no TLA+ value for the JSON {value.Type} {value}"),
    };

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
