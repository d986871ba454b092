using Microsoft.FSharp.Core;

namespace FormalChat.Client;

/// Where printed lines go. Every console write passes through one sink so that lines from the
/// read loop and the line being typed never interleave.
public interface IConsoleSink
{
    void WriteLine(string text, bool toStandardError = false);
}

/// The sink for scripts and redirected input: whole lines, one writer at a time.
public sealed class PlainSink : IConsoleSink
{
    private readonly Lock gate = new();

    public void WriteLine(string text, bool toStandardError = false)
    {
        lock (gate)
        {
            var writer = toStandardError ? Console.Error : Console.Out;
            writer.WriteLine(text);
            writer.Flush();
        }
    }
}

/// ANSI colours, used only when stdout is a terminal and NO_COLOR is unset (https://no-color.org).
public sealed class Palette(bool enabled)
{
    public static bool TerminalWantsColour() =>
        !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));

    public string Own(string text) => Paint("1", text);
    public string Private(string text) => Paint("35", text);
    public string System(string text) => Paint("36", text);
    public string Error(string text) => Paint("31", text);
    public string Dim(string text) => Paint("2", text);

    private string Paint(string code, string text) => enabled ? $"\u001b[{code}m{text}\u001b[0m" : text;
}

public static class OptionExtensions
{
    /// F# `int option` as C# `int?` (None is null on the C# side).
    public static int? ToNullable(this Microsoft.FSharp.Core.FSharpOption<int>? option) =>
        OptionModule.IsSome(option) ? option!.Value : null;
}
