using System.Collections.Concurrent;
using System.Net;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;

namespace FormalChat.Node.Security;

/// <summary>
/// Limits failed resumes per client address (issue 11: 2,005 session-token guesses in 1.3 s). A
/// failed resume is a hello with a session token that the core answers with nick-taken: the token
/// is not the nickname's. The core stays as it is; the shell sees the hello go in and the error
/// come back. Each address has a token bucket of <see cref="Burst"/> failures that refills one
/// every <see cref="RefillInterval"/>; an address without tokens has its next hello with a token
/// refused with login-throttled, and that connection is closed. A connection may have one such
/// hello waiting for its answer at a time, so a client cannot pipeline guesses past the bucket.
/// Hellos without a token, and successful resumes (a failover), cost nothing.
/// </summary>
public sealed class ResumeThrottle
{
    public const int Burst = 10;
    public static readonly TimeSpan RefillInterval = TimeSpan.FromSeconds(3);
    /// <summary>Addresses remembered at most; past it, those whose buckets are full again are forgotten.</summary>
    private const int MaxAddresses = 65_536;

    private readonly InputCounters _counters;
    private readonly ThrottledWarning _warning;
    private readonly TimeProvider _time;
    private readonly Dictionary<IPAddress, Bucket> _buckets = new();
    /// <summary>Connections whose hello with a token awaits the core's answer, with their address.</summary>
    private readonly ConcurrentDictionary<long, IPAddress> _awaiting = new();

    public ResumeThrottle(InputCounters counters, ILogger log, TimeProvider? time = null)
    {
        _counters = counters;
        _warning = new ThrottledWarning(log, TimeSpan.FromSeconds(1));
        _time = time ?? TimeProvider.System;
    }

    /// <summary>
    /// A hello that carries a session token, from <paramref name="client"/> at <paramref name="address"/>:
    /// null when it may go to the core (its answer is then awaited), else the reason to refuse it.
    /// </summary>
    public string? Admit(long client, IPAddress address)
    {
        string? refusal;
        lock (_buckets)
        {
            var tokens = Refilled(address);
            refusal = tokens >= 1 ? null
                : $"too many failed resumes (wrong session token) from {address}: at most {Burst}, then one every {RefillInterval.TotalSeconds:0} s; try again in {SecondsUntilNext(tokens):0} s";
        }
        if (refusal is null && !_awaiting.TryAdd(client, address))
        {
            refusal = "one hello with a session token at a time: wait for the answer to the last one";
        }
        if (refusal is null) return null;
        var count = _counters.CountThrottledResume();
        _warning.Log($"refused a resume from {address} (client {client}): {refusal} ({count} refused so far)");
        return refusal;
    }

    /// <summary>The core welcomed the client: a resume that worked costs nothing.</summary>
    public void Welcomed(long client) => _awaiting.TryRemove(client, out _);

    /// <summary>The core refused the client's hello; nick-taken after a token is a failed resume.</summary>
    public void Refused(long client, ErrorCode code)
    {
        if (!code.IsNickTaken || !_awaiting.TryRemove(client, out var address)) return;
        _counters.CountFailedResume();
        lock (_buckets)
        {
            var tokens = Refilled(address);
            _buckets[address] = new Bucket(Math.Max(-Burst, tokens - 1), _time.GetTimestamp());
        }
    }

    public void Disconnected(long client) => _awaiting.TryRemove(client, out _);

    /// <summary>The address's tokens now; a new address starts full. Under the lock.</summary>
    private double Refilled(IPAddress address)
    {
        var now = _time.GetTimestamp();
        if (!_buckets.TryGetValue(address, out var bucket))
        {
            if (_buckets.Count >= MaxAddresses) ForgetFullBuckets(now);
            return Burst;
        }
        var refill = _time.GetElapsedTime(bucket.Timestamp, now) / RefillInterval;
        var tokens = Math.Min(Burst, bucket.Tokens + refill);
        _buckets[address] = new Bucket(tokens, now);
        return tokens;
    }

    private void ForgetFullBuckets(long now)
    {
        foreach (var (address, bucket) in _buckets.ToList())
        {
            if (bucket.Tokens + _time.GetElapsedTime(bucket.Timestamp, now) / RefillInterval >= Burst) _buckets.Remove(address);
        }
    }

    private static double SecondsUntilNext(double tokens) => Math.Ceiling((1 - tokens) * RefillInterval.TotalSeconds);

    private readonly record struct Bucket(double Tokens, long Timestamp);
}
