using System.Diagnostics;
using System.Threading.Channels;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// The real chat client as a process in --json mode: the test types commands on its standard
/// input and reads its events, one JSON object per line, from its standard output.
/// </summary>
public sealed class ClientProcess : IAsyncDisposable
{
    private static readonly TimeSpan EventDeadline = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly Channel<JObject> _events = Channel.CreateUnbounded<JObject>();
    private readonly List<JObject> _seen = new();
    private readonly List<string> _errors = new();

    private ClientProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, line) =>
        {
            if (line.Data is not { Length: > 0 } text) return;
            try
            {
                var json = JObject.Parse(text);
                lock (_seen) _seen.Add(json);
                _events.Writer.TryWrite(json);
            }
            catch (Newtonsoft.Json.JsonException) { lock (_errors) _errors.Add("stdout not JSON: " + text); }
        };
        process.ErrorDataReceived += (_, line) => { if (line.Data is { } text) lock (_errors) _errors.Add(text); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static ClientProcess Start(params string[] arguments) => new(Launch(arguments));

    /// <summary>The real client in --json mode, its input and both outputs redirected.</summary>
    public static Process Launch(IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Client.CSharp.dll"));
        foreach (var argument in arguments.Append("--json")) start.ArgumentList.Add(argument);
        return Process.Start(start) ?? throw new InvalidOperationException("the client did not start");
    }

    /// <summary>Every event so far, in order.</summary>
    public IReadOnlyList<JObject> Seen { get { lock (_seen) return _seen.ToList(); } }

    public string Diagnostics { get { lock (_errors) return string.Join("\n", _errors); } }

    public async Task TypeAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line);
        await _process.StandardInput.FlushAsync();
    }

    public async Task<JObject> NextAsync(Func<JObject, bool> matches, TimeSpan? deadline = null)
    {
        using var timeout = new CancellationTokenSource(deadline ?? EventDeadline);
        try
        {
            while (true)
            {
                var next = await _events.Reader.ReadAsync(timeout.Token);
                if (matches(next)) return next;
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no matching client event; stderr:\n{Diagnostics}\nevents:\n{string.Join("\n", Seen.TakeLast(20))}");
        }
    }

    /// <summary>The room's messages as this client showed them: (seq, text), in order.</summary>
    public List<(long Seq, string Text)> Shown(string room) =>
        Seen.Where(e => (string?)e["event"] == "message" && (string?)e["room"] == room)
            .Select(e => ((long)e["seq"]!, (string)e["text"]!))
            .ToList();

    public async Task EndInputAsync()
    {
        _process.StandardInput.Close();
        using var deadline = new CancellationTokenSource(EventDeadline);
        await _process.WaitForExitAsync(deadline.Token);
    }

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once the client has ended by itself (within the event deadline).</summary>
    public async Task<int> ExitCodeAsync()
    {
        using var deadline = new CancellationTokenSource(EventDeadline);
        await _process.WaitForExitAsync(deadline.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
    }
}
