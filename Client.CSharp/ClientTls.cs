using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FormalChat.CommandLine;
using FormalChat.Protocol;

namespace FormalChat.Client;

/// <summary>
/// TLS to a node's client port (--tls, --tls-ca, --tls-insecure-skip-verify; docs/SECURITY.md):
/// turns a connected stream into an authenticated one, TLS 1.2 or 1.3, or fails with a reason a
/// person can act on: a certificate for another name, one nobody trusted signed, an expired one,
/// or a server that does not speak TLS at all.
/// </summary>
public static class ClientTls
{
    public const string SkipVerifyWarning =
        "WARNING: --tls-insecure-skip-verify: the node's certificate is NOT checked. The connection is encrypted, " +
        "but anyone on the path can pretend to be the node and read everything, your session token included. Use --tls-ca FILE instead.";

    /// <summary>The TLS stream over <paramref name="network"/>, which it then owns; throws
    /// ConnectFailedException with the reason when the handshake fails or takes longer than <paramref name="timeout"/>.</summary>
    public static async Task<Stream> AuthenticateAsync(Stream network, Endpoint server, ClientTlsOptions settings, TimeSpan timeout)
    {
        string? refusal = null;
        var caFile = settings.CaFile?.Value;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = server.Host,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            // A private CA publishes no revocation lists; a public one is checked by name and chain.
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                if (settings.SkipVerify) return true;
                refusal = Explain(server, certificate, chain, errors, caFile);
                return refusal is null;
            },
        };
        if (caFile is not null) options.CertificateChainPolicy = TrustOnly(caFile);
        var tls = new SslStream(network, leaveInnerStreamOpen: false);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await tls.AuthenticateAsClientAsync(options, deadline.Token);
            return tls;
        }
        catch (Exception error) when (error is AuthenticationException or IOException or OperationCanceledException)
        {
            await tls.DisposeAsync();
            throw new ConnectFailedException("TLS: " + (refusal ?? error switch
            {
                OperationCanceledException => $"no TLS answer within {timeout.TotalSeconds:0.#} s: the node may not speak TLS on this port (then leave out --tls)",
                _ => $"the handshake failed, most likely because the node does not speak TLS on this port (then leave out --tls): {error.Message}",
            }));
        }
    }

    /// <summary>Trust the CA certificates (or the self-signed certificate) in a PEM file, and nothing else.</summary>
    private static X509ChainPolicy TrustOnly(string caFile)
    {
        var authorities = new X509Certificate2Collection();
        try
        {
            authorities.ImportFromPemFile(caFile);
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new ConnectFailedException($"TLS: cannot read --tls-ca {caFile}: {error.Message}");
        }
        if (authorities.Count == 0) throw new ConnectFailedException($"TLS: --tls-ca {caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.AddRange(authorities);
        return policy;
    }

    /// <summary>Null when the certificate is good for this server; else what is wrong with it.</summary>
    public static string? Explain(Endpoint server, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors, string? caFile)
    {
        if (errors == SslPolicyErrors.None) return null;
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable)) return "the node sent no certificate";
        var presented = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        var what = $"the node's certificate ({presented.Subject}, issued by {presented.Issuer}, SHA-256 {presented.GetCertHashString(HashAlgorithmName.SHA256)})";
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors))
        {
            var statuses = chain?.ChainStatus.Select(status => status.Status).ToHashSet() ?? [];
            if (statuses.Contains(X509ChainStatusFlags.NotTimeValid))
            {
                return DateTime.Now > presented.NotAfter
                    ? $"{what} expired on {presented.NotAfter:u}"
                    : $"{what} is valid only from {presented.NotBefore:u}";
            }
            if (statuses.Overlaps([X509ChainStatusFlags.UntrustedRoot, X509ChainStatusFlags.PartialChain]) || statuses.Count == 0)
            {
                return caFile is null
                    ? $"{what} is not trusted: no certificate authority of this system signed it. For a private CA or a self-signed certificate, give --tls-ca FILE with that CA's certificate"
                    : $"{what} is not trusted: it is not signed by the CA in --tls-ca {caFile} (is it the right file?)";
            }
            return $"{what} is not valid: {string.Join("; ", chain!.ChainStatus.Select(status => status.StatusInformation.Trim()))}";
        }
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return $"{what} is not for {server.Host}: it is for {string.Join(", ", NamesOf(presented))}. Connect by one of those names, or give the node a certificate that names {server.Host}";
        }
        return $"{what} was refused: {errors}";
    }

    /// <summary>The names a certificate is good for: its subject alternative names, else its common name.</summary>
    private static IEnumerable<string> NamesOf(X509Certificate2 certificate)
    {
        var alternative = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        var names = alternative is null
            ? []
            : alternative.EnumerateDnsNames().Concat(alternative.EnumerateIPAddresses().Select(address => address.ToString())).ToList();
        return names.Count > 0 ? names : [certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false)];
    }
}
