using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace FormalChat.Node.Security;

/// <summary>
/// Account passwords as PBKDF2-SHA256 records (docs/SECURITY.md, "Accounts"), made and checked in
/// the shell: the core keeps the record as opaque text (Protocol.FSharp/Accounts.fs). A record is
/// <c>pbkdf2-sha256$iterations$salt$hash</c> (salt and hash in base64), so the count can be raised
/// later without breaking the records already kept.
/// </summary>
public static class PasswordHasher
{
    public const string Scheme = "pbkdf2-sha256";
    /// <summary>Issue 11 asks for at least 100,000; each check costs about that many HMACs (tens of ms).</summary>
    public const int Iterations = 100_000;
    /// <summary>A record asking for more is refused rather than computed: no record may stall a check.</summary>
    private const int MaxIterations = 10_000_000;
    private const int SaltBytes = 16;
    private const int HashBytes = 32;

    /// <summary>A new record for <paramref name="password"/>, with a fresh random salt.</summary>
    public static string Hash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        var hash = Derive(password, salt, Iterations);
        return string.Join('$', Scheme, Iterations.ToString(CultureInfo.InvariantCulture), Convert.ToBase64String(salt), Convert.ToBase64String(hash));
    }

    /// <summary>Whether <paramref name="password"/> is the one <paramref name="record"/> was made of; false for a record that is not one.</summary>
    public static bool Verify(string password, string record)
    {
        var parts = record.Split('$');
        if (parts.Length != 4 || parts[0] != Scheme) return false;
        if (!int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations) || iterations < 1 || iterations > MaxIterations) return false;
        byte[] salt, expected;
        try
        {
            salt = Convert.FromBase64String(parts[2]);
            expected = Convert.FromBase64String(parts[3]);
        }
        catch (FormatException)
        {
            return false;
        }
        if (expected.Length != HashBytes) return false;
        return CryptographicOperations.FixedTimeEquals(Derive(password, salt, iterations), expected);
    }

    private static byte[] Derive(string password, byte[] salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, HashBytes);
}
