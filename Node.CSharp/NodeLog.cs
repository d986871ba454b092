using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace FormalChat.Node;

/// <summary>Console logging in one short line per event: time, node, level, words.</summary>
public static class NodeLog
{
    public static ILoggerFactory Create(LogLevel minimum) =>
        LoggerFactory.Create(builder => builder
            .SetMinimumLevel(minimum)
            .AddConsole(options => options.FormatterName = OneLineFormatter.FormatterName)
            .AddConsoleFormatter<OneLineFormatter, ConsoleFormatterOptions>());

    /// <summary>FORMALCHAT_LOG=debug shows every dropped frame and link retry; the default is info.</summary>
    public static LogLevel LevelFromEnvironment() =>
        Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("FORMALCHAT_LOG"), ignoreCase: true, out var level)
            ? level
            : LogLevel.Information;

    private sealed class OneLineFormatter : ConsoleFormatter
    {
        public const string FormatterName = "formalchat";

        public OneLineFormatter(IOptionsMonitor<ConsoleFormatterOptions> options) : base(FormatterName) { }

        public override void Write<TState>(in LogEntry<TState> entry, IExternalScopeProvider? scopes, TextWriter output)
        {
            var level = entry.LogLevel switch
            {
                LogLevel.Debug or LogLevel.Trace => "debug",
                LogLevel.Information => "info ",
                LogLevel.Warning => "WARN ",
                _ => "ERROR",
            };
            var message = entry.Formatter(entry.State, entry.Exception);
            output.WriteLine($"{DateTime.Now:HH:mm:ss.fff} [{entry.Category}] {level} {message}");
            if (entry.Exception is not null) output.WriteLine(entry.Exception.ToString());
        }
    }
}

/// <summary>Counts of refused input, so a flood of garbage is visible without a log line per frame.</summary>
public sealed class InputCounters
{
    private long _badClientFrames;
    private long _badPeerFrames;
    private long _badDatagrams;
    private long _helloTimeouts;
    private long _refusedConnections;

    public long BadClientFrames => Interlocked.Read(ref _badClientFrames);
    public long BadPeerFrames => Interlocked.Read(ref _badPeerFrames);
    public long BadDatagrams => Interlocked.Read(ref _badDatagrams);

    public long CountBadClientFrame() => Interlocked.Increment(ref _badClientFrames);
    public long CountBadPeerFrame() => Interlocked.Increment(ref _badPeerFrames);
    public long CountBadDatagram() => Interlocked.Increment(ref _badDatagrams);

    // Refused by cluster authentication (Security/ClusterSecurity.cs).
    private long _refusedPeerLinks;
    private long _forgedDatagrams;
    private long _replayedDatagrams;

    /// <summary>Peer links closed because their handshake failed or timed out, either direction.</summary>
    public long RefusedPeerLinks => Interlocked.Read(ref _refusedPeerLinks);
    /// <summary>Heartbeat datagrams without a seal, or whose MAC does not verify under our key.</summary>
    public long ForgedDatagrams => Interlocked.Read(ref _forgedDatagrams);
    /// <summary>Authentic heartbeat datagrams seen before (or sent too far from our clock).</summary>
    public long ReplayedDatagrams => Interlocked.Read(ref _replayedDatagrams);

    public long CountRefusedPeerLink() => Interlocked.Increment(ref _refusedPeerLinks);
    public long CountForgedDatagram() => Interlocked.Increment(ref _forgedDatagrams);
    public long CountReplayedDatagram() => Interlocked.Increment(ref _replayedDatagrams);

    /// <summary>Connections closed because they were not welcomed within --hello-timeout.</summary>
    public long HelloTimeouts => Interlocked.Read(ref _helloTimeouts);
    /// <summary>Connections refused because their address already had --max-connections-per-ip.</summary>
    public long RefusedConnections => Interlocked.Read(ref _refusedConnections);

    public long CountHelloTimeout() => Interlocked.Increment(ref _helloTimeouts);
    public long CountRefusedConnection() => Interlocked.Increment(ref _refusedConnections);

    // Client security (Security/ClientTls.cs, Security/ResumeThrottle.cs).
    private long _refusedTlsConnections;
    private long _failedResumes;
    private long _throttledResumes;

    /// <summary>Connections to a TLS port closed before TLS was up: plain text, a failed or slow handshake.</summary>
    public long RefusedTlsConnections => Interlocked.Read(ref _refusedTlsConnections);
    /// <summary>Hellos whose session token was not the nickname's.</summary>
    public long FailedResumes => Interlocked.Read(ref _failedResumes);
    /// <summary>Hellos with a session token refused with login-throttled, their connections closed.</summary>
    public long ThrottledResumes => Interlocked.Read(ref _throttledResumes);

    public long CountRefusedTlsConnection() => Interlocked.Increment(ref _refusedTlsConnections);
    public long CountFailedResume() => Interlocked.Increment(ref _failedResumes);
    public long CountThrottledResume() => Interlocked.Increment(ref _throttledResumes);

    // Accounts (Security/PasswordGate.cs): hellos for a registered nick, throttled by ResumeThrottle too.
    private long _failedLogins;
    private long _throttledLogins;

    /// <summary>Hellos whose password did not match the nick's account.</summary>
    public long FailedLogins => Interlocked.Read(ref _failedLogins);
    /// <summary>Hellos with a password refused with login-throttled (per address or per nick), their connections closed.</summary>
    public long ThrottledLogins => Interlocked.Read(ref _throttledLogins);

    public long CountFailedLogin() => Interlocked.Increment(ref _failedLogins);
    public long CountThrottledLogin() => Interlocked.Increment(ref _throttledLogins);
}
