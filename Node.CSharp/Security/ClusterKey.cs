using System.Security.Cryptography;
using System.Text;

namespace FormalChat.Node.Security;

/// <summary>
/// The cluster's shared secret: 32 random bytes that every node of one cluster holds, and that
/// authenticate peer links and heartbeat datagrams (docs/SECURITY.md). On disk it is one line of
/// 64 hex digits (what `openssl rand -hex 32` prints), readable by its owner only.
/// </summary>
public sealed class ClusterKey
{
    public const int Length = 32;

    private readonly byte[] _secret;

    private ClusterKey(byte[] secret) => _secret = secret;

    /// <summary>A key from raw bytes (tests, and a freshly generated key).</summary>
    public static ClusterKey FromBytes(ReadOnlySpan<byte> secret)
    {
        if (secret.Length != Length) throw new ClusterKeyException($"a cluster key is {Length} bytes, not {secret.Length}");
        return new ClusterKey(secret.ToArray());
    }

    public static ClusterKey Generate() => new(RandomNumberGenerator.GetBytes(Length));

    /// <summary>HMAC-SHA256 of <paramref name="data"/> under this key.</summary>
    public byte[] Mac(ReadOnlySpan<byte> data) => HMACSHA256.HashData(_secret, data);

    /// <summary>Reads a key file, refusing one that is missing, of the wrong length, not hex, or
    /// readable by other users (anyone who can read the key can join the cluster).</summary>
    public static ClusterKey Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ClusterKeyException($"cluster key file '{path}' does not exist; make one with: openssl rand -hex 32 > {path} && chmod 600 {path}");
        }
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
            if ((mode & others) != 0)
            {
                throw new ClusterKeyException(
                    $"cluster key file '{path}' can be read or written by other users (mode {Convert.ToString((int)mode, 8)}); " +
                    $"whoever reads it can join the cluster: chmod 600 {path}");
            }
        }
        var text = File.ReadAllText(path, Encoding.ASCII).Trim();
        if (text.Length != 2 * Length)
        {
            throw new ClusterKeyException(
                $"cluster key file '{path}' holds {text.Length} characters, not {2 * Length} hex digits: a cluster key is {Length} random bytes " +
                "(a shorter key can be guessed; any other length is likely the wrong file); make one with: openssl rand -hex 32");
        }
        byte[] secret;
        try { secret = Convert.FromHexString(text); }
        catch (FormatException) { throw new ClusterKeyException($"cluster key file '{path}' is not {2 * Length} hex digits (0-9, a-f)"); }
        return new ClusterKey(secret);
    }

    /// <summary>Writes a fresh random key to <paramref name="path"/> (replacing any), readable by
    /// this user only from the moment the file exists.</summary>
    public static void WriteNew(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var file = new StreamWriter(path, Encoding.ASCII, options);
        file.WriteLine(Convert.ToHexString(RandomNumberGenerator.GetBytes(Length)).ToLowerInvariant());
    }
}

/// <summary>A key file the node cannot use; the message says why and what to do.</summary>
public sealed class ClusterKeyException(string message) : Exception(message);
