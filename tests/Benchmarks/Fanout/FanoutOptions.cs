namespace FormalChat.Benchmarks.Fanout;

/// <summary>One workload: how many receivers, and a send rate (null: as fast as the sender can).</summary>
public sealed record FanoutScenario(string Name, int Receivers, int? Rate)
{
    /// <summary>flood&lt;receivers&gt; or paced&lt;messages per second&gt; (100 receivers).</summary>
    public static FanoutScenario? Parse(string name)
    {
        if (name.StartsWith("flood", StringComparison.Ordinal) && int.TryParse(name[5..], out var receivers) && receivers is >= 1 and <= 1000)
            return new FanoutScenario(name, receivers, null);
        if (name.StartsWith("paced", StringComparison.Ordinal) && int.TryParse(name[5..], out var rate) && rate is >= 1 and <= 100_000)
            return new FanoutScenario(name, 100, rate);
        return null;
    }

    public int MessageCount(FanoutOptions options) => Rate is { } rate ? rate * options.Seconds : options.Messages;

    public string Describe(FanoutOptions options) =>
        Rate is { } rate ? $"{rate} msg/s for {options.Seconds} s to {Receivers} receivers" : $"{options.Messages} messages flooded to {Receivers} receivers";
}

/// <summary>The command line of <c>Benchmarks fanout</c>.</summary>
public sealed record FanoutOptions(IReadOnlyList<string> Targets, IReadOnlyList<FanoutScenario> Scenarios, int Messages, int Seconds, int CapSeconds, string? OutputPath)
{
    public const string Usage =
        "usage: Benchmarks fanout [--targets ngircd,1,3] [--scenarios flood10,flood100,paced500,paced2000]\n" +
        "                         [--messages 20000] [--seconds 5] [--cap 60] [--out FILE]\n" +
        "  --targets    ngircd and/or FormalChat node counts 1-9 (receivers spread round-robin, sender on node 1)\n" +
        "  --scenarios  flood<receivers>: --messages as fast as one sender can; paced<rate>: rate msg/s for --seconds, 100 receivers\n" +
        "  --messages   messages per flood (1-1000000)      --seconds  length of a paced run (1-600)\n" +
        "  --cap        hard limit per scenario in seconds, after which what arrived is counted (5-3600)\n" +
        "  --out        also write the table to FILE";

    public static FanoutOptions Defaults { get; } = new(
        ["ngircd", "1", "3"],
        new[] { "flood10", "flood100", "paced500", "paced2000" }.Select(name => FanoutScenario.Parse(name)!).ToArray(),
        Messages: 20_000, Seconds: 5, CapSeconds: 60, OutputPath: null);

    /// <summary>The options, or null with the reason for a bad command line.</summary>
    public static FanoutOptions? Parse(string[] args, out string? error)
    {
        var options = Defaults;
        error = null;
        for (var i = 0; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            if (value is null) { error = $"{args[i]} needs a value"; return null; }
            switch (args[i])
            {
                case "--targets":
                    var targets = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (targets.Length == 0 || targets.Any(t => t != "ngircd" && !(int.TryParse(t, out var nodes) && nodes is >= 1 and <= 9)))
                    { error = $"bad --targets {value}"; return null; }
                    options = options with { Targets = targets };
                    break;
                case "--scenarios":
                    var scenarios = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(FanoutScenario.Parse).ToArray();
                    if (scenarios.Length == 0 || scenarios.Any(s => s is null)) { error = $"bad --scenarios {value}"; return null; }
                    options = options with { Scenarios = scenarios! };
                    break;
                case "--messages" when int.TryParse(value, out var messages) && messages is >= 1 and <= 1_000_000:
                    options = options with { Messages = messages };
                    break;
                case "--seconds" when int.TryParse(value, out var seconds) && seconds is >= 1 and <= 600:
                    options = options with { Seconds = seconds };
                    break;
                case "--cap" when int.TryParse(value, out var cap) && cap is >= 5 and <= 3600:
                    options = options with { CapSeconds = cap };
                    break;
                case "--out":
                    options = options with { OutputPath = value };
                    break;
                default:
                    error = $"bad flag or value: {args[i]} {value}";
                    return null;
            }
            i++;
        }
        return options;
    }
}
