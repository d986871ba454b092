using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FormalChat.Cluster.Tests.Security;

/// <summary>
/// A test's own certificate authority and a node certificate it signs, written as PEM files the
/// way an operator would give them to nginx or a node (--tls-cert, --tls-key) and to a client
/// (--tls-ca): made with CertificateRequest, no openssl. Deleted with the directory on disposal.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("formalchat-tls-").FullName;

    /// <param name="names">The names the node certificate is for: DNS names and IP addresses.</param>
    public TestCertificates(string authorityName = "FormalChat test CA", params string[] names)
    {
        if (names.Length == 0) names = ["127.0.0.1", "localhost"];
        using var authorityKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var authorityRequest = new CertificateRequest($"CN={authorityName}", authorityKey, HashAlgorithmName.SHA256);
        authorityRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        authorityRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var now = DateTimeOffset.UtcNow;
        using var authority = authorityRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));

        using var nodeKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var nodeRequest = new CertificateRequest($"CN={names[0]}", nodeKey, HashAlgorithmName.SHA256);
        var alternative = new SubjectAlternativeNameBuilder();
        foreach (var name in names)
        {
            if (IPAddress.TryParse(name, out var address)) alternative.AddIpAddress(address);
            else alternative.AddDnsName(name);
        }
        nodeRequest.CertificateExtensions.Add(alternative.Build());
        nodeRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        nodeRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        nodeRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var node = nodeRequest.Create(authority, now.AddDays(-1), now.AddDays(29), RandomNumberGenerator.GetBytes(16));

        File.WriteAllText(AuthorityFile, authority.ExportCertificatePem() + "\n");
        // The node's file as nginx's ssl_certificate: its own certificate, then the chain up to the root.
        File.WriteAllText(CertificateFile, node.ExportCertificatePem() + "\n" + authority.ExportCertificatePem() + "\n");
        File.WriteAllText(KeyFile, nodeKey.ExportPkcs8PrivateKeyPem() + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(KeyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    /// <summary>The CA certificate, for --tls-ca.</summary>
    public string AuthorityFile => Path.Combine(_directory, "ca.pem");
    /// <summary>The node certificate followed by the CA's, for --tls-cert.</summary>
    public string CertificateFile => Path.Combine(_directory, "node.pem");
    /// <summary>The node certificate's private key, for --tls-key.</summary>
    public string KeyFile => Path.Combine(_directory, "node.key");

    /// <summary>The node flags that turn TLS on with this certificate.</summary>
    public string[] NodeArguments => ["--tls-cert", CertificateFile, "--tls-key", KeyFile];

    public void Dispose()
    {
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
