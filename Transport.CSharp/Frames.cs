using System.Text;

namespace FormalChat.Transport;

/// <summary>Frames as the connection sends them, and the reasons it gives for ending.</summary>
public static class Frames
{
    public const byte Newline = (byte)'\n';

    /// <summary>The reading stopped because the other side ended the connection.</summary>
    public const string ClosedByOtherSide = "connection closed by the other side";

    /// <summary>The reason of a connection closed because its reader fell behind.</summary>
    public const string TooSlowPrefix = "too slow";

    /// <summary>One line as a frame: its UTF-8 bytes and the newline.</summary>
    public static ReadOnlyMemory<byte> Of(string line) => Encoding.UTF8.GetBytes(line + "\n");

    /// <summary>The reason given for a frame over the limit.</summary>
    public static string Oversized(int maxFrameBytes) => $"frame larger than {maxFrameBytes} bytes";
}
