using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FormalChat.CommandLine;
using FormalChat.Protocol;
using FormalChat.Transport;
using Microsoft.Extensions.Logging;

namespace FormalChat.Node.Security;

/// <summary>The certificate or key of --tls-cert/--tls-key cannot be used: the node does not start.</summary>
public sealed class TlsSetupException(string message) : Exception(message);

/// <summary>
/// TLS on the client and IRC ports (--tls-cert, --tls-key; docs/SECURITY.md): turns an accepted
/// socket into an authenticated stream (TLS 1.2 or 1.3), or refuses it. A client that speaks plain
/// text gets one plain-text line that says why (the caller's, in its own protocol) and is closed:
/// the first byte of every TLS connection is a handshake record (0x16), which no line of ours or of
/// IRC begins with, so the node can tell before the handshake. A handshake that fails or does not
/// finish in time is closed and counted; the node goes on.
/// </summary>
public sealed class ClientTls
{
    /// <summary>The first byte of a TLS connection: a handshake record (RFC 8446, 5.1).</summary>
    private const byte HandshakeRecord = 0x16;

    private readonly SslServerAuthenticationOptions _options;
    private readonly InputCounters _counters;
    private readonly ThrottledWarning _warning;

    private ClientTls(X509Certificate2 certificate, X509Certificate2Collection intermediates, InputCounters counters, ILogger log)
    {
        Certificate = certificate;
        _options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(certificate, intermediates, offline: true),
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateRequired = false,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,
        };
        _counters = counters;
        _warning = new ThrottledWarning(log, TimeSpan.FromSeconds(1));
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>The TLS of --tls-cert and --tls-key, or null without them. Throws TlsSetupException
    /// when the files cannot be used, before anything listens.</summary>
    public static ClientTls? FromOptions(NodeOptions options, InputCounters counters, ILogger log) =>
        options.Tls is { } files ? Load(files.Value, counters, log) : null;

    /// <summary>A PEM certificate file as nginx's ssl_certificate (the leaf first, then any
    /// intermediates it should send) and a PEM private key (PKCS#8, PKCS#1 or SEC1, not encrypted).</summary>
    public static ClientTls Load(TlsFiles files, InputCounters counters, ILogger log)
    {
        var chain = new X509Certificate2Collection();
        X509Certificate2 leaf;
        try
        {
            chain.ImportFromPemFile(files.CertFile);
            if (chain.Count == 0) throw new TlsSetupException($"--tls-cert {files.CertFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
            // The first certificate with the key; on Linux a key loaded from PEM serves SslStream as it is.
            leaf = X509Certificate2.CreateFromPemFile(files.CertFile, files.KeyFile);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            throw new TlsSetupException($"cannot read --tls-cert {files.CertFile} or --tls-key {files.KeyFile}: {error.Message}");
        }
        catch (Exception error) when (error is CryptographicException or ArgumentException)
        {
            throw new TlsSetupException(
                $"--tls-cert {files.CertFile} and --tls-key {files.KeyFile} are not a usable pair: {error.Message} " +
                "(the key must be the unencrypted PEM private key of the first certificate in the file)");
        }
        if (!leaf.HasPrivateKey) throw new TlsSetupException($"--tls-key {files.KeyFile} holds no private key for {leaf.Subject}");
        var intermediates = new X509Certificate2Collection();
        foreach (var certificate in chain.Skip(1)) intermediates.Add(certificate);
        var tls = new ClientTls(leaf, intermediates, counters, log);
        tls.WarnAboutValidity(log);
        return tls;
    }

    private void WarnAboutValidity(ILogger log)
    {
        var now = DateTime.Now;
        if (now > Certificate.NotAfter) log.LogWarning("the TLS certificate {Subject} expired on {NotAfter:u}: clients that check it will refuse to connect", Certificate.Subject, Certificate.NotAfter);
        else if (now < Certificate.NotBefore) log.LogWarning("the TLS certificate {Subject} is valid only from {NotBefore:u}: clients that check it will refuse to connect", Certificate.Subject, Certificate.NotBefore);
    }

    /// <summary>What the node says at start about its client ports.</summary>
    public static void LogStart(ClientTls? tls, NodeOptions options, ILogger log)
    {
        if (tls is not null)
        {
            log.LogInformation("TLS on the client port{Irc}: TLS 1.2+ only, certificate {Subject} (SHA-256 {Fingerprint}), valid until {NotAfter:u}",
                options.IrcPort is null ? "" : " and the IRC port", tls.Certificate.Subject, tls.Certificate.GetCertHashString(HashAlgorithmName.SHA256), tls.Certificate.NotAfter);
        }
        else if (!IPAddress.IsLoopback(IPAddress.Parse(options.Host)))
        {
            log.LogWarning("PLAIN TEXT on a network address: clients connect to {Host}:{Port} without TLS, so anyone on the path can read their chat and session tokens; give --tls-cert and --tls-key (docs/SECURITY.md)",
                options.Host, options.ClientPort);
        }
    }

    /// <summary>
    /// A framed connection over an accepted socket: plain TCP when <paramref name="tls"/> is null,
    /// else over the TLS stream once its handshake is done; null when TLS refused the socket.
    /// </summary>
    public static async Task<FramedConnection?> OpenAsync(ClientTls? tls, Socket socket, string port, TimeSpan deadline,
        ReadOnlyMemory<byte> plainTextRefusal, long maxQueuedBytes, ByteGauge gauge, CancellationToken stop)
    {
        if (tls is null) return FramedConnection.Open(socket, maxQueuedBytes, gauge, sendsNow: true);
        var remote = socket.RemoteEndPoint?.ToString() ?? "unknown";
        var stream = await tls.AcceptAsync(socket, port, deadline, plainTextRefusal, stop).ConfigureAwait(false);
        return stream is null ? null : FramedConnection.Open(stream, remote, maxQueuedBytes, gauge);
    }

    /// <summary>
    /// The connection's stream once the client has finished a TLS handshake within
    /// <paramref name="deadline"/>, or null when it is refused (closed, counted and logged): a
    /// client that speaks plain text first gets <paramref name="plainTextRefusal"/>, in the clear.
    /// </summary>
    public async Task<Stream?> AcceptAsync(Socket socket, string port, TimeSpan deadline, ReadOnlyMemory<byte> plainTextRefusal, CancellationToken stop)
    {
        var remote = socket.RemoteEndPoint?.ToString() ?? "unknown";
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(deadline);
        var first = new byte[1];
        int peeked;
        try { peeked = await socket.ReceiveAsync(first, SocketFlags.Peek, timeout.Token).ConfigureAwait(false); }
        catch (Exception error) when (error is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            socket.Dispose();
            if (!stop.IsCancellationRequested) Refused(port, remote, $"no TLS handshake within {deadline.TotalSeconds:0.#} s");
            return null;
        }
        // A probe that connects and hangs up (a port check) has said nothing to refuse.
        if (peeked == 0)
        {
            socket.Dispose();
            return null;
        }
        if (first[0] != HandshakeRecord)
        {
            await RefusePlainTextAsync(socket, plainTextRefusal).ConfigureAwait(false);
            Refused(port, remote, "it spoke plain text; this port accepts TLS only");
            return null;
        }
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            await tls.AuthenticateAsServerAsync(_options, timeout.Token).ConfigureAwait(false);
            return tls;
        }
        catch (Exception error) when (error is AuthenticationException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            await tls.DisposeAsync().ConfigureAwait(false);
            var why = error is OperationCanceledException ? $"the TLS handshake did not finish within {deadline.TotalSeconds:0.#} s" : $"the TLS handshake failed: {error.Message}";
            if (!stop.IsCancellationRequested) Refused(port, remote, why);
            return null;
        }
    }

    /// <summary>The refusal, then FIN, then whatever the client still sends is read and dropped
    /// for a moment: closing with its hello unread would send an RST, which can discard the
    /// refusal before the client reads it.</summary>
    private static async Task RefusePlainTextAsync(Socket socket, ReadOnlyMemory<byte> refusal)
    {
        using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await socket.SendAsync(refusal, SocketFlags.None, drain.Token).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Send);
            var buffer = new byte[4096];
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, drain.Token).ConfigureAwait(false) > 0) { }
        }
        catch (Exception error) when (error is OperationCanceledException or SocketException or ObjectDisposedException) { }
        finally { socket.Dispose(); }
    }

    private void Refused(string port, string remote, string reason)
    {
        var count = _counters.CountRefusedTlsConnection();
        _warning.Log($"closed a {port} connection from {remote} before TLS was up: {reason} ({count} refused so far)");
    }
}
