using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// Asks one server the same question (status, or PING) every <see cref="Interval"/> while a
/// scenario runs, on a connection of its own opened during set-up, and keeps the slowest answer.
/// One question is outstanding at a time. The answer is read with blocking receives on a thread of
/// this probe's own: during a flood the benchmark's receivers keep the thread pool's queue full,
/// and an answer read through it would time that queue, not the server. The answer "after the
/// flood" is this probe's first to a question asked once the last message was sent
/// (<see cref="AskAfterLastSend"/>), timed the same way.
/// </summary>
public sealed class PeriodicProbe : IAsyncDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    private readonly Socket _socket;
    private readonly byte[] _question;
    private readonly Func<string, bool> _isAnswer;
    private readonly TimeSpan _deadline;
    private readonly ManualResetEventSlim _stop = new();
    /// <summary>Set when the last message was sent: the next question goes at once, not at the next interval.</summary>
    private readonly ManualResetEventSlim _askNow = new();
    private readonly TaskCompletionSource<string> _afterLastSend = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastSendAt;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _buffer = new byte[16 * 1024];
    private int _buffered;
    private double _slowestMs = double.NaN;
    private int _answered;
    private string? _failure;
    private bool _started;

    private PeriodicProbe(Socket socket, string question, Func<string, bool> isAnswer, TimeSpan deadline)
    {
        _socket = socket;
        _question = Encoding.UTF8.GetBytes(question);
        _isAnswer = isAnswer;
        _deadline = deadline;
    }

    /// <summary>Connects, says <paramref name="greeting"/> if the protocol needs one, and asks once, so a
    /// connection that cannot be answered fails set-up, not the run.</summary>
    public static async Task<PeriodicProbe> OpenAsync(int port, string question, Func<string, bool> isAnswer, TimeSpan deadline,
        (string Text, Func<string, bool> IsAnswer)? greeting = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var probe = new PeriodicProbe(socket, question, isAnswer, deadline);
        try
        {
            await socket.ConnectAsync(IPAddress.Loopback, port);
            await Task.Run(() =>
            {
                if (greeting is { } hello && probe.Ask(Encoding.UTF8.GetBytes(hello.Text), hello.IsAnswer) is null)
                    throw new TimeoutException($"no answer to {hello.Text.Trim()} within {deadline.TotalSeconds:0} s");
                if (probe.Ask(probe._question, isAnswer) is null)
                    throw new TimeoutException($"no answer to {question.Trim()} within {deadline.TotalSeconds:0} s");
            });
            return probe;
        }
        catch
        {
            await probe.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts asking, right before the scenario's first send.</summary>
    public void Start()
    {
        _started = true;
        new Thread(AskUntilStopped) { IsBackground = true, Name = "periodic probe" }.Start();
    }

    /// <summary>Stops every probe, each after its outstanding answer or that answer's deadline. The slowest
    /// answer of each, "/" between them ("&gt;deadline" for one that never came within it), then how many
    /// answers the probe with the fewest had: "24/31/18 (12×)", "0.4 (PING, 3×)".</summary>
    public static async Task<string> StopAllAsync(IReadOnlyList<PeriodicProbe> probes, string? what = null)
    {
        foreach (var probe in probes) probe._stop.Set();
        await Task.WhenAll(probes.Select(probe => probe._stopped.Task));
        var slowest = probes.Select(probe => probe._failure ?? (double.IsNaN(probe._slowestMs) ? "–" : FanoutTable.Milliseconds(probe._slowestMs)));
        return $"{string.Join("/", slowest)} ({(what is null ? "" : what + ", ")}{probes.Min(probe => probe._answered)}×)";
    }

    private void AskUntilStopped()
    {
        try
        {
            while (!_stop.IsSet)
            {
                var asked = Stopwatch.GetTimestamp();
                var lastSendAt = Volatile.Read(ref _lastSendAt);
                if (Ask(_question, _isAnswer) is not { } ms)
                {
                    // The late answer would be read as the next one's: the slowest is known to be past the deadline, so stop here.
                    _failure = $">{_deadline.TotalMilliseconds:0}";
                    return;
                }
                _slowestMs = double.IsNaN(_slowestMs) ? ms : Math.Max(_slowestMs, ms);
                _answered++;
                if (lastSendAt != 0)
                {
                    _afterLastSend.TrySetResult(FanoutTable.Milliseconds(ms));
                    _askNow.Reset();
                }
                var rest = Interval - Stopwatch.GetElapsedTime(asked);
                if (rest > TimeSpan.Zero && !_askNow.IsSet) WaitHandle.WaitAny([_stop.WaitHandle, _askNow.WaitHandle], rest);
            }
        }
        catch (Exception error) when (error is SocketException or ObjectDisposedException)
        {
            _failure = "closed";
        }
        finally
        {
            _afterLastSend.TrySetResult(_failure ?? "–");
            _stopped.TrySetResult();
        }
    }

    /// <summary>Called once the last message was sent: each probe asks again at once (after its outstanding
    /// question), and the first answer to a question asked from then on is returned, "/" between the probes.</summary>
    public static async Task<string> AskAfterLastSend(IReadOnlyList<PeriodicProbe> probes, string? what = null)
    {
        foreach (var probe in probes)
        {
            Volatile.Write(ref probe._lastSendAt, Stopwatch.GetTimestamp());
            probe._askNow.Set();
        }
        var answers = await Task.WhenAll(probes.Select(probe => probe._afterLastSend.Task));
        return string.Join("/", answers) + (what is null ? "" : $" ({what})");
    }

    /// <summary>Milliseconds from sending <paramref name="question"/> to the first line that answers it, or
    /// null past the deadline. Lines that do not answer it are skipped.</summary>
    private double? Ask(byte[] question, Func<string, bool> isAnswer)
    {
        var start = Stopwatch.GetTimestamp();
        _socket.Send(question);
        while (true)
        {
            var line = NextLine(start);
            if (line is null) return null;
            if (isAnswer(line)) return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
    }

    /// <summary>The next line without its line ending, or null once the deadline counted from <paramref name="start"/> has passed.</summary>
    private string? NextLine(long start)
    {
        while (true)
        {
            var end = Array.IndexOf(_buffer, (byte)'\n', 0, _buffered);
            if (end >= 0)
            {
                var line = Encoding.UTF8.GetString(_buffer, 0, end).TrimEnd('\r');
                Buffer.BlockCopy(_buffer, end + 1, _buffer, 0, _buffered - end - 1);
                _buffered -= end + 1;
                return line;
            }
            var left = _deadline - Stopwatch.GetElapsedTime(start);
            if (left <= TimeSpan.Zero) return null;
            if (_buffered == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
            _socket.ReceiveTimeout = Math.Max(1, (int)left.TotalMilliseconds);
            int read;
            try { read = _socket.Receive(_buffer, _buffered, _buffer.Length - _buffered, SocketFlags.None); }
            catch (SocketException error) when (error.SocketErrorCode == SocketError.TimedOut) { return null; }
            if (read == 0) throw new SocketException((int)SocketError.ConnectionReset);
            _buffered += read;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Set();
        _socket.Dispose();
        // The closed socket ends a receive in progress; a probe that was never started has no thread to wait for.
        if (_started) await _stopped.Task;
        _stop.Dispose();
        _askNow.Dispose();
    }
}
