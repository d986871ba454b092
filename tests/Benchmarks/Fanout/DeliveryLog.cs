using System.Diagnostics;

namespace FormalChat.Benchmarks.Fanout;

/// <summary>
/// What one receiver got: the arrival time of the first copy of each numbered message (the
/// text "m&lt;number&gt;"), and how often a number came again. Written by the receiver's read loop
/// only; the driver reads the counts while it waits and the arrivals once it is done.
/// </summary>
public sealed class DeliveryLog(int messages)
{
    /// <summary>The message every receiver must have before the clock starts.</summary>
    public const string WarmUpText = "warmup";
    private static ReadOnlySpan<byte> WarmUpBytes => "warmup"u8;

    private readonly long[] _arrivals = new long[messages];
    private int _unique;
    private int _repeats;
    private int _outOfOrder;
    private int _last = -1;
    private volatile bool _warmedUp;

    /// <summary>Distinct numbered messages received.</summary>
    public int Unique => Volatile.Read(ref _unique);

    /// <summary>Copies of a number already received (IRC's duplicates; for FormalChat, a repeated seq or a repeat under a new seq).</summary>
    public int Repeats => Volatile.Read(ref _repeats);

    /// <summary>First copies whose number is lower than the last one received: one sender numbers in send order.</summary>
    public int OutOfOrder => Volatile.Read(ref _outOfOrder);

    public bool WarmedUp => _warmedUp;

    /// <summary>Stopwatch timestamp of each message's first arrival, 0 where it never came.</summary>
    public ReadOnlySpan<long> Arrivals => _arrivals;

    /// <summary>Records one message text as it arrives.</summary>
    public void Record(ReadOnlySpan<byte> text)
    {
        if (text.Length > 1 && text[0] == (byte)'m' && TryParse(text[1..], out var number) && number < _arrivals.Length)
        {
            if (_arrivals[number] != 0) Volatile.Write(ref _repeats, _repeats + 1);
            else
            {
                _arrivals[number] = Stopwatch.GetTimestamp();
                if (number < _last) Volatile.Write(ref _outOfOrder, _outOfOrder + 1);
                _last = number;
                Volatile.Write(ref _unique, _unique + 1);
            }
        }
        else if (text.SequenceEqual(WarmUpBytes)) _warmedUp = true;
    }

    public static string Text(int number) => $"m{number}";

    private static bool TryParse(ReadOnlySpan<byte> digits, out int number)
    {
        number = 0;
        foreach (var digit in digits)
        {
            if (digit is < (byte)'0' or > (byte)'9' || number > 100_000_000) return false;
            number = number * 10 + (digit - '0');
        }
        return true;
    }
}
