using System.Text;

namespace FormalChat.Client;

/// A one-line editor for an interactive terminal. It owns the prompt and the line being typed;
/// a line printed meanwhile (a message from the read loop) erases the prompt line, prints, and
/// redraws the prompt with the unfinished input, so typing is never garbled. One lock guards
/// the buffer and every console write.
public sealed class LineEditor(string prompt) : IConsoleSink
{
    private const string EraseLine = "\r\u001b[2K";
    private static readonly TimeSpan KeyPollInterval = TimeSpan.FromMilliseconds(15);

    private readonly Lock gate = new();
    private readonly StringBuilder buffer = new();
    private bool editing;
    private string prompt = prompt;

    /// Shows the current room and the connection state; redrawn at once if a line is being typed.
    public void SetPrompt(string text)
    {
        lock (gate)
        {
            if (text == prompt) return;
            if (editing) ErasePromptLine();
            prompt = text;
            if (editing) DrawPromptLine();
        }
    }

    public void WriteLine(string text, bool toStandardError = false)
    {
        lock (gate)
        {
            if (editing) ErasePromptLine();
            var writer = toStandardError ? Console.Error : Console.Out;
            writer.Write(text.ReplaceLineEndings("\n") + "\n");
            writer.Flush();
            if (editing) DrawPromptLine();
        }
    }

    /// Reads one line; null means the user wants to leave (Ctrl+C, Ctrl+D) or `cancel` fired.
    /// Polls for keys so that a closed connection (cancel) ends the wait promptly.
    public async Task<string?> ReadLineAsync(CancellationToken cancel)
    {
        lock (gate)
        {
            // Ctrl+C arrives as a key (quit cleanly) rather than killing the process.
            Console.TreatControlCAsInput = true;
            editing = true;
            DrawPromptLine();
        }
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                if (!Console.KeyAvailable)
                {
                    await Task.Delay(KeyPollInterval, CancellationToken.None);
                    continue;
                }
                var key = Console.ReadKey(intercept: true);
                lock (gate)
                {
                    var finished = Apply(key, out var line);
                    if (finished) return line;
                }
            }
            return null;
        }
        finally
        {
            lock (gate)
            {
                // Enter (or leaving) takes the typed line off the screen; the node echoes what was sent.
                ErasePromptLine();
                buffer.Clear();
                editing = false;
                Console.Out.Flush();
            }
        }
    }

    /// Applies one key under the lock. Returns true when the line is finished (line = null to quit).
    private bool Apply(ConsoleKeyInfo key, out string? line)
    {
        line = null;
        var control = key.Modifiers.HasFlag(ConsoleModifiers.Control);
        if (key.KeyChar == '\u0003' || key.KeyChar == '\u0004' || (control && key.Key is ConsoleKey.C or ConsoleKey.D))
            return true;
        switch (key.Key)
        {
            case ConsoleKey.Enter:
                line = buffer.ToString();
                return true;
            case ConsoleKey.Backspace when buffer.Length > 0:
                buffer.Length--;
                Redraw();
                return false;
            case ConsoleKey.U when control:
                buffer.Clear();
                Redraw();
                return false;
        }
        if (key.KeyChar != '\0' && !char.IsControl(key.KeyChar))
        {
            buffer.Append(key.KeyChar);
            Console.Out.Write(key.KeyChar);
            Console.Out.Flush();
        }
        return false;
    }

    private void Redraw()
    {
        ErasePromptLine();
        DrawPromptLine();
    }

    private void DrawPromptLine()
    {
        Console.Out.Write(prompt);
        Console.Out.Write(buffer.ToString());
        Console.Out.Flush();
    }

    /// Erases the prompt and the input, including rows the terminal wrapped it onto: the cursor
    /// is at the end of the input, so go up to the prompt's row and clear to the end of screen.
    private void ErasePromptLine()
    {
        var width = Math.Max(1, SafeWindowWidth());
        var length = prompt.Length + buffer.Length;
        var rowsAbove = length == 0 ? 0 : (length - 1) / width;
        Console.Out.Write(EraseLine);
        if (rowsAbove > 0) Console.Out.Write($"\u001b[{rowsAbove}A\u001b[J");
    }

    private static int SafeWindowWidth()
    {
        try
        {
            return Console.WindowWidth > 0 ? Console.WindowWidth : 80;
        }
        catch (IOException)
        {
            return 80;
        }
    }
}
