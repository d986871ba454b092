using System.Collections.Concurrent;
using System.Net;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;

namespace FormalChat.Node.Security;

/// <summary>
/// Limits failed resumes and failed logins (issue 11: 2,005 session-token guesses in 1.3 s). A
/// failed resume is a hello with a session token that the core answers with nick-taken: the token
/// is not the nickname's; a failed login is a hello whose password the core answers with
/// password-wrong (Security/PasswordGate.cs). The core stays as it is; the shell sees the hello go
/// in and the error come back. Each client address, and each nick a password was tried for, has a
/// token bucket of <see cref="Burst"/> failures that refills one every <see cref="RefillInterval"/>;
/// when the address's (or the nick's) bucket is empty, the next hello with a token or a password
/// is refused with login-throttled, and that connection is closed. A connection may have one such
/// hello waiting for its answer at a time, so a client cannot pipeline guesses past the bucket.
/// Hellos without a token or a password, and ones that succeed (a failover), cost nothing. The
/// per-nick bucket stops guessing spread over many addresses; its price is that such guessing
/// also slows the nick's owner down to one login every RefillInterval while it lasts.
/// </summary>
public sealed class ResumeThrottle
{
    public const int Burst = 10;
    public static readonly TimeSpan RefillInterval = TimeSpan.FromSeconds(3);

    private readonly InputCounters _counters;
    private readonly ThrottledWarning _warning;
    private readonly Buckets<IPAddress> _addresses;
    private readonly Buckets<string> _nicks;
    /// <summary>Connections whose hello with a token or a password awaits the core's answer.</summary>
    private readonly ConcurrentDictionary<long, Awaiting> _awaiting = new();

    public ResumeThrottle(InputCounters counters, ILogger log, TimeProvider? time = null)
    {
        _counters = counters;
        _warning = new ThrottledWarning(log, TimeSpan.FromSeconds(1));
        time ??= TimeProvider.System;
        _addresses = new Buckets<IPAddress>(time);
        _nicks = new Buckets<string>(time);
    }

    /// <summary>
    /// A hello that carries a session token, from <paramref name="client"/> at <paramref name="address"/>:
    /// null when it may go to the core (its answer is then awaited), else the reason to refuse it.
    /// </summary>
    public string? Admit(long client, IPAddress address) => Admit(client, address, nick: null);

    /// <summary>
    /// A hello that carries a session token or a password (<paramref name="nick"/> set: a login,
    /// throttled per nick too): null when it may go to the core, else the reason to refuse it.
    /// </summary>
    public string? Admit(long client, IPAddress address, string? nick)
    {
        var refusal = _addresses.Empty(address) is { } wait
            ? $"too many failed resumes or logins from {address}: at most {Burst}, then one every {RefillInterval.TotalSeconds:0} s; try again in {wait:0} s"
            : nick is not null && _nicks.Empty(nick) is { } nickWait
                ? $"too many failed logins for {nick}: at most {Burst}, then one every {RefillInterval.TotalSeconds:0} s; try again in {nickWait:0} s"
                : null;
        if (refusal is null && !_awaiting.TryAdd(client, new Awaiting(address, nick)))
        {
            refusal = "one hello with a session token at a time (or with a password): wait for the answer to the last one";
        }
        if (refusal is null) return null;
        var count = nick is null ? _counters.CountThrottledResume() : _counters.CountThrottledLogin();
        _warning.Log($"refused a {(nick is null ? "resume" : "login")} from {address} (client {client}): {refusal} ({count} refused so far)");
        return refusal;
    }

    /// <summary>The core welcomed the client: a resume or login that worked costs nothing.</summary>
    public void Welcomed(long client) => _awaiting.TryRemove(client, out _);

    /// <summary>The core refused the client's hello: nick-taken after a token is a failed resume,
    /// password-wrong a failed login; other refusals cost nothing.</summary>
    public void Refused(long client, ErrorCode code)
    {
        var failed = code.IsNickTaken || code.IsPasswordWrong;
        if (!failed || !_awaiting.TryRemove(client, out var awaiting)) return;
        if (code.IsPasswordWrong) _counters.CountFailedLogin();
        else _counters.CountFailedResume();
        _addresses.Charge(awaiting.Address);
        if (awaiting.Nick is not null && code.IsPasswordWrong) _nicks.Charge(awaiting.Nick);
    }

    public void Disconnected(long client) => _awaiting.TryRemove(client, out _);

    private readonly record struct Awaiting(IPAddress Address, string? Nick);

    /// <summary>Token buckets of failures by key (an address, a nick); each starts full.</summary>
    private sealed class Buckets<TKey>(TimeProvider time) where TKey : notnull
    {
        /// <summary>Keys remembered at most; past it, those whose buckets are full again are forgotten.</summary>
        private const int MaxKeys = 65_536;
        private readonly Dictionary<TKey, Bucket> _buckets = new();

        /// <summary>Null while the key has a token; else the seconds until it has one.</summary>
        public double? Empty(TKey key)
        {
            lock (_buckets)
            {
                var tokens = Refilled(key);
                return tokens >= 1 ? null : Math.Ceiling((1 - tokens) * RefillInterval.TotalSeconds);
            }
        }

        public void Charge(TKey key)
        {
            lock (_buckets)
            {
                var tokens = Refilled(key);
                _buckets[key] = new Bucket(Math.Max(-Burst, tokens - 1), time.GetTimestamp());
            }
        }

        /// <summary>The key's tokens now; a new key starts full. Under the lock.</summary>
        private double Refilled(TKey key)
        {
            var now = time.GetTimestamp();
            if (!_buckets.TryGetValue(key, out var bucket))
            {
                if (_buckets.Count >= MaxKeys) ForgetFullBuckets(now);
                return Burst;
            }
            var refill = time.GetElapsedTime(bucket.Timestamp, now) / RefillInterval;
            var tokens = Math.Min(Burst, bucket.Tokens + refill);
            _buckets[key] = new Bucket(tokens, now);
            return tokens;
        }

        private void ForgetFullBuckets(long now)
        {
            foreach (var (key, bucket) in _buckets.ToList())
            {
                if (bucket.Tokens + time.GetElapsedTime(bucket.Timestamp, now) / RefillInterval >= Burst) _buckets.Remove(key);
            }
        }
    }

    private readonly record struct Bucket(double Tokens, long Timestamp);
}
