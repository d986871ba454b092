using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Newtonsoft.Json.Linq;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>A raw line client over TLS that trusts one CA file: for what the real client does not
/// show, such as the fields the shell adds to a status reply.</summary>
public sealed class TlsLineClient : IAsyncDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private readonly TcpClient _tcp;
    private readonly SslStream _tls;
    private readonly StreamReader _reader;

    private TlsLineClient(TcpClient tcp, SslStream tls)
    {
        _tcp = tcp;
        _tls = tls;
        _reader = new StreamReader(tls, Encoding.UTF8);
    }

    public static async Task<TlsLineClient> OpenAsync(int port, string authorityFile)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPemFile(authorityFile);
        policy.CustomTrustStore.AddRange(authorities);
        var tls = new SslStream(tcp.GetStream());
        using var deadline = new CancellationTokenSource(Deadline);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "127.0.0.1", CertificateChainPolicy = policy }, deadline.Token);
        return new TlsLineClient(tcp, tls);
    }

    public string Protocol => _tls.SslProtocol.ToString();

    public Task SendAsync(JObject frame) => SendLineAsync(frame.ToString(Newtonsoft.Json.Formatting.None));

    public async Task SendLineAsync(string line)
    {
        await _tls.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"));
        await _tls.FlushAsync();
    }

    /// <summary>The next line that matches, skipping the others (for IRC).</summary>
    public async Task<string> NextLineAsync(Func<string, bool> matches)
    {
        using var deadline = new CancellationTokenSource(Deadline);
        while (true)
        {
            var line = await _reader.ReadLineAsync(deadline.Token) ?? throw new IOException("the node closed the connection");
            if (matches(line)) return line;
        }
    }

    /// <summary>The next frame that matches, skipping the others.</summary>
    public async Task<JObject> NextAsync(Func<JObject, bool> matches) =>
        JObject.Parse(await NextLineAsync(line => matches(JObject.Parse(line))));

    /// <summary>The node's status reply, with what the shell adds to it.</summary>
    public async Task<JObject> StatusAsync()
    {
        await SendAsync(new JObject { ["type"] = "status" });
        return await NextAsync(frame => (string?)frame["type"] == "status");
    }

    public async ValueTask DisposeAsync()
    {
        await _tls.DisposeAsync();
        _tcp.Dispose();
    }
}
