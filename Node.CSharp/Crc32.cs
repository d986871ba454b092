namespace FormalChat.Node;

/// <summary>
/// CRC-32 (IEEE 802.3, the zlib and PNG one: reflected polynomial 0xEDB88320) over a room log
/// record's payload. A table of 256 entries: the System.IO.Hashing package is not reachable from
/// this project's package source, and a record is a few hundred bytes, so speed is no concern.
/// </summary>
public static class Crc32
{
    private const uint Polynomial = 0xEDB88320u;

    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var value in data) crc = Table[(crc ^ value) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint index = 0; index < 256; index++)
        {
            var entry = index;
            for (var bit = 0; bit < 8; bit++) entry = (entry & 1) != 0 ? (entry >> 1) ^ Polynomial : entry >> 1;
            table[index] = entry;
        }
        return table;
    }
}
