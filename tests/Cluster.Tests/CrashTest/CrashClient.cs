using System.Diagnostics;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.CrashTest;

/// <summary>An event the client printed, with the run's clock when the test read it.</summary>
public sealed record TimedEvent(TimeSpan At, JObject Json)
{
    public string? Name => (string?)Json["event"];
}

/// <summary>A line the workload typed: <c>/say room text</c>.</summary>
public sealed record SentLine(TimeSpan At, string Room, string Text);

/// <summary>
/// One real chat client (Client.CSharp --json) of a crash test: it types `/say` lines on the
/// client's standard input and records every event the client prints, with a timestamp from
/// the run's clock, for the checker.
/// </summary>
public sealed class CrashClient : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Stopwatch _clock;
    private readonly List<TimedEvent> _events = new();
    private readonly List<SentLine> _sent = new();
    private readonly List<string> _stderr = new();
    private readonly Dictionary<string, long> _lastSeq = new(StringComparer.Ordinal);
    private readonly HashSet<string> _joined = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _stdin = new(1, 1);
    /// <summary>Room for lines typed and not yet acknowledged: a line takes one, its first ack gives it back.</summary>
    private readonly SemaphoreSlim _window;
    private readonly HashSet<long> _ackedIds = new();
    private int _acks;
    private bool _welcomed;
    private bool _inputBroken;

    private CrashClient(string nick, IReadOnlyList<string> rooms, Process process, Stopwatch clock, int window)
    {
        _window = new SemaphoreSlim(window);
        Nick = nick;
        Rooms = rooms;
        _process = process;
        _clock = clock;
        process.OutputDataReceived += (_, line) => Record(line.Data);
        process.ErrorDataReceived += (_, line) => { if (line.Data is { } text) lock (_stderr) _stderr.Add(text); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Nick { get; }

    /// <summary>The rooms this client joins at the start and stays in: #lobby first.</summary>
    public IReadOnlyList<string> Rooms { get; }

    /// <summary>The node given as --server; failover may take the client elsewhere.</summary>
    public int FirstNode { get; private init; }

    public static CrashClient Start(string nick, IReadOnlyList<string> rooms, int node, int clientPort, string multicastGroup, Stopwatch clock, int window)
    {
        var process = ClientProcess.Launch(["--nick", nick, "--server", $"127.0.0.1:{clientPort}", "--multicast", multicastGroup]);
        return new CrashClient(nick, rooms, process, clock, window) { FirstNode = node };
    }

    private void Record(string? text)
    {
        if (text is not { Length: > 0 }) return;
        var at = _clock.Elapsed;
        JObject json;
        try
        {
            json = JObject.Parse(text);
        }
        catch (Newtonsoft.Json.JsonException)
        {
            lock (_stderr) _stderr.Add("stdout not JSON: " + text);
            return;
        }
        lock (_events)
        {
            _events.Add(new TimedEvent(at, json));
            switch ((string?)json["event"])
            {
                case "welcome":
                    _welcomed = true;
                    break;
                case "joined":
                    _joined.Add((string)json["room"]!);
                    break;
                case "ack":
                    _acks++;
                    if (_ackedIds.Add((long)json["id"]!)) _window.Release();
                    break;
                case "message":
                    var room = (string)json["room"]!;
                    _lastSeq[room] = Math.Max(_lastSeq.GetValueOrDefault(room), (long)json["seq"]!);
                    break;
            }
        }
    }

    public bool Welcomed { get { lock (_events) return _welcomed; } }

    public bool HasJoinedAll { get { lock (_events) return Rooms.All(_joined.Contains); } }

    public int Acknowledged { get { lock (_events) return _acks; } }

    public int SentCount { get { lock (_sent) return _sent.Count; } }

    /// <summary>The highest sequence number this client has shown in a room (0: none).</summary>
    public long LastSeq(string room) { lock (_events) return _lastSeq.GetValueOrDefault(room); }

    /// <summary>The process ended by itself (it gave up), or its input broke.</summary>
    public bool Gone => _process.HasExited || _inputBroken;

    public IReadOnlyList<TimedEvent> Events { get { lock (_events) return _events.ToList(); } }

    public IReadOnlyList<SentLine> Sent { get { lock (_sent) return _sent.ToList(); } }

    public string Diagnostics { get { lock (_stderr) return string.Join("\n", _stderr); } }

    public Task JoinAsync(string room) => TypeAsync($"/join {room}");

    /// <summary>
    /// Types one chat line for a room once fewer than the window's lines await their ack; false
    /// when the client can no longer take input, or <paramref name="stop"/> came first.
    /// </summary>
    public async Task<bool> SayAsync(string room, string text, CancellationToken stop)
    {
        try
        {
            await _window.WaitAsync(stop);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        // Recorded before it is typed: an ack can come back before the write returns.
        lock (_sent) _sent.Add(new SentLine(_clock.Elapsed, room, text));
        if (await TypeAsync($"/say {room} {text}")) return true;
        lock (_sent) _sent.RemoveAt(_sent.FindLastIndex(line => line.Text == text));
        return false;
    }

    private async Task<bool> TypeAsync(string line)
    {
        await _stdin.WaitAsync();
        try
        {
            if (_inputBroken || _process.HasExited) return false;
            await _process.StandardInput.WriteLineAsync(line);
            await _process.StandardInput.FlushAsync();
            return true;
        }
        catch (IOException)
        {
            _inputBroken = true;
            return false;
        }
        finally
        {
            _stdin.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        _stdin.Dispose();
        _window.Dispose();
    }
}
