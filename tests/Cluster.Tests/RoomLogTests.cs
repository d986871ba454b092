using System.Buffers;
using System.Text;
using FormalChat.Node;
using FormalChat.CommandLine;
using FormalChat.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.FSharp.Collections;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// The room logs on disk (docs/REPLICATION.md, "The log on disk"), without a node: records
/// written and read back, recovery from a torn or damaged tail, rewrites, the data directory lock.
/// </summary>
public sealed class RoomLogTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("formalchat-log-").FullName;
    private readonly RecordingLogger _log = new();

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static RoomMessage Message(string room, long seq, string text = "", string from = "alice") =>
        new(RoomName.NewRoomName(room), seq, Nick.NewNick(from), 1, text.Length > 0 ? text : $"message {seq}", seq);

    private static FSharpList<RoomMessage> Messages(string room, long first, long last) =>
        ListModule.OfSeq(Enumerable.Range((int)first, (int)(last - first + 1)).Select(seq => Message(room, seq)));

    private RoomLogStore Open(FsyncPolicy? policy = null) => RoomLogStore.Open(_directory, policy ?? FsyncPolicy.Batch, _log);

    private async Task<Dictionary<string, List<RoomMessage>>> ReopenAsync()
    {
        await using var store = Open();
        return store.Recovered.ToDictionary(log => log.Item1.Value, log => log.Item2.ToList());
    }

    private string LogFile(string room) => Path.Combine(_directory, room[1..] + ".log");

    private static byte[] Record(RoomMessage message)
    {
        var buffer = new ArrayBufferWriter<byte>();
        LogRecords.Write(buffer, message);
        return buffer.WrittenSpan.ToArray();
    }

    [Fact]
    public void Crc32_is_the_IEEE_one_zlib_and_PNG_use()
    {
        Assert.Equal(0xCBF43926u, System.IO.Hashing.Crc32.HashToUInt32("123456789"u8));
        Assert.Equal(0u, System.IO.Hashing.Crc32.HashToUInt32([]));
    }

    [Fact]
    public async Task Messages_appended_in_several_writes_are_read_back_in_order()
    {
        await using (var store = Open())
        {
            Assert.Empty(store.Recovered);
            store.Append("#books", Messages("#books", 1, 3));
            store.Append("#books", Messages("#books", 4, 4));
            store.Append("#games", Messages("#games", 1, 2));
            store.Append("#books", Messages("#books", 5, 7));
        }

        var recovered = await ReopenAsync();

        Assert.Equal(Messages("#books", 1, 7), recovered["#books"]);
        Assert.Equal(Messages("#games", 1, 2), recovered["#games"]);
        Assert.Contains("recovered #books: 7 messages (last seq 7)", _log.Lines);
        Assert.Contains("recovered #games: 2 messages (last seq 2)", _log.Lines);
        Assert.DoesNotContain(_log.Lines, line => line.Contains("dropped"));
    }

    [Fact]
    public async Task A_record_is_length_then_crc32_then_the_JSON_payload()
    {
        var message = Message("#books", 1, "hello");
        await using (var store = Open()) store.Append("#books", ListModule.OfSeq([message]));

        var bytes = await File.ReadAllBytesAsync(LogFile("#books"));

        var length = BitConverter.ToUInt32(bytes, 0);
        var payload = bytes.AsSpan(8);
        Assert.Equal((uint)payload.Length, length);
        Assert.Equal(System.IO.Hashing.Crc32.HashToUInt32(payload), BitConverter.ToUInt32(bytes, 4));
        Assert.Equal(message, Wire.decodeRoomMessage(Encoding.UTF8.GetString(payload)).ResultValue);
    }

    [Theory]
    [InlineData(3)]   // part of a header
    [InlineData(8)]   // a whole header, no payload
    [InlineData(20)]  // a header and part of its payload
    public async Task A_torn_last_record_is_cut_off_and_the_dropped_bytes_reported(int tornBytes)
    {
        await using (var store = Open()) store.Append("#books", Messages("#books", 1, 3));
        var whole = new FileInfo(LogFile("#books")).Length;
        await using (var file = new FileStream(LogFile("#books"), FileMode.Append))
        {
            file.Write(Record(Message("#books", 4)).AsSpan(0, tornBytes));
        }

        var recovered = await ReopenAsync();

        Assert.Equal(Messages("#books", 1, 3), recovered["#books"]);
        Assert.Equal(whole, new FileInfo(LogFile("#books")).Length);
        Assert.Contains(_log.Lines, line => line.Contains($"dropped the last {tornBytes} bytes") && line.Contains("torn write"));
        Assert.Contains("recovered #books: 3 messages (last seq 3)", _log.Lines);
    }

    [Fact]
    public async Task Appends_after_a_torn_tail_continue_from_the_last_whole_record()
    {
        await using (var store = Open()) store.Append("#books", Messages("#books", 1, 2));
        await using (var file = new FileStream(LogFile("#books"), FileMode.Append)) file.Write(Record(Message("#books", 3)).AsSpan(0, 11));

        await using (var store = Open()) store.Append("#books", Messages("#books", 3, 4));

        Assert.Equal(Messages("#books", 1, 4), (await ReopenAsync())["#books"]);
    }

    /// <summary>The offset of each record of a log of <paramref name="count"/> messages written by <see cref="Messages"/>.</summary>
    private static long[] Offsets(string room, int count)
    {
        var offsets = new long[count + 1];
        for (var seq = 1; seq <= count; seq++) offsets[seq] = offsets[seq - 1] + Record(Message(room, seq)).Length;
        return offsets; // offsets[seq - 1] is where seq starts; offsets[count] the end
    }

    [Fact]
    public async Task A_flipped_byte_mid_log_skips_that_record_and_keeps_every_one_after_it()
    {
        await using (var store = Open()) store.Append("#books", Messages("#books", 1, 10));
        var bytes = await File.ReadAllBytesAsync(LogFile("#books"));
        var offsets = Offsets("#books", 10);
        bytes[offsets[4] + 8 + 5] ^= 0x20; // one bit of seq 5's payload
        await File.WriteAllBytesAsync(LogFile("#books"), bytes);

        var recovered = await ReopenAsync();

        Assert.Equal(Messages("#books", 1, 4).Concat(Messages("#books", 6, 10)), recovered["#books"]);
        Assert.Equal(bytes.Length, new FileInfo(LogFile("#books")).Length); // nothing cut: the damage stays until the room is repaired
        Assert.Contains(_log.Lines, line => line.Contains($"room #books is damaged at byte {offsets[4]}")
            && line.Contains($"skipped {offsets[5] - offsets[4]} bytes") && line.Contains("checksum") && line.Contains("missing seqs 5..5"));
        Assert.DoesNotContain(_log.Lines, line => line.Contains("dropped"));
    }

    [Fact]
    public async Task A_flipped_byte_in_the_last_record_is_a_torn_tail_and_cut_off()
    {
        await using (var store = Open()) store.Append("#books", Messages("#books", 1, 3));
        var bytes = await File.ReadAllBytesAsync(LogFile("#books"));
        var offsets = Offsets("#books", 3);
        bytes[offsets[2] + 8 + 5] ^= 0x20; // one bit of the last record's payload
        await File.WriteAllBytesAsync(LogFile("#books"), bytes);

        var recovered = await ReopenAsync();

        Assert.Equal(Messages("#books", 1, 2), recovered["#books"]);
        Assert.Equal(offsets[2], new FileInfo(LogFile("#books")).Length);
        Assert.Contains(_log.Lines, line => line.Contains($"dropped the last {bytes.Length - offsets[2]} bytes") && line.Contains("checksum"));
        Assert.DoesNotContain(_log.Lines, line => line.Contains("is damaged at"));
    }

    [Fact]
    public async Task A_damaged_length_field_mid_log_is_skipped_by_resynchronising_on_the_next_record()
    {
        await using (var store = Open()) store.Append("#books", Messages("#books", 1, 10));
        var bytes = await File.ReadAllBytesAsync(LogFile("#books"));
        var offsets = Offsets("#books", 10);
        bytes[offsets[3] + 3] = 0x7F; // seq 4's length becomes ~2 GiB: more than any record
        bytes[offsets[6] + 0] ^= 0x01; // seq 7's length one off: its checksum is over the wrong bytes
        await File.WriteAllBytesAsync(LogFile("#books"), bytes);

        await using (var store = Open())
        {
            Assert.Equal(2, store.DamagedStretches);
            Assert.Equal(Messages("#books", 1, 3).Concat(Messages("#books", 5, 6)).Concat(Messages("#books", 8, 10)), store.Recovered.Single().Item2);
        }
        Assert.Contains(_log.Lines, line => line.Contains($"damaged at byte {offsets[3]}") && line.Contains("more than any record") && line.Contains("missing seqs 4..4"));
        Assert.Contains(_log.Lines, line => line.Contains($"damaged at byte {offsets[6]}") && line.Contains("missing seqs 7..7"));
    }

    [Fact]
    public async Task Damage_that_costs_no_message_is_rewritten_away_at_once()
    {
        // Noise between two records (a write that was no record): nothing is missing around it.
        byte[] noise = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        await File.WriteAllBytesAsync(LogFile("#books"),
            [.. Record(Message("#books", 1)), .. Record(Message("#books", 2)), .. noise, .. Record(Message("#books", 3))]);

        Assert.Equal(Messages("#books", 1, 3), (await ReopenAsync())["#books"]);
        Assert.Contains(_log.Lines, line => line.Contains("missing seqs none"));
        Assert.Contains(_log.Lines, line => line.Contains("rewritten without the damaged stretches"));
        var before = _log.Lines.Count;

        Assert.Equal(Messages("#books", 1, 3), (await ReopenAsync())["#books"]);

        Assert.DoesNotContain(_log.Lines.Skip(before), line => line.Contains("damaged"));
        Assert.Equal(Offsets("#books", 3)[3], new FileInfo(LogFile("#books")).Length);
    }

    [Fact]
    public void Two_damaged_stretches_are_both_skipped_and_reported_with_the_seqs_they_lost()
    {
        var buffer = new ArrayBufferWriter<byte>();
        foreach (var message in Messages("#books", 1, 20)) LogRecords.Write(buffer, message);
        var bytes = buffer.WrittenSpan.ToArray();
        var offsets = Offsets("#books", 20);
        // Seqs 3 and 4 garbled across their boundary; seqs 12 to 15 overwritten with noise.
        for (var at = offsets[3] - 6; at < offsets[3] + 12; at++) bytes[at] ^= 0x55;
        new Random(7).NextBytes(bytes.AsSpan((int)offsets[11], (int)(offsets[15] - offsets[11])));

        var readBack = LogRecords.ReadAll(new MemoryStream(bytes), "#books", keepLast: 100);

        Assert.Equal(Messages("#books", 1, 2).Concat(Messages("#books", 5, 11)).Concat(Messages("#books", 16, 20)), readBack.Messages);
        Assert.Equal(bytes.Length, readBack.ValidBytes);
        Assert.Null(readBack.StoppedBecause);
        Assert.Equal(2, readBack.Damaged.Count);
        Assert.Equal((offsets[2], offsets[4] - offsets[2], "3..4"), (readBack.Damaged[0].Offset, readBack.Damaged[0].Bytes, readBack.Damaged[0].MissingSeqs));
        Assert.Equal((offsets[11], offsets[15] - offsets[11], "12..15"), (readBack.Damaged[1].Offset, readBack.Damaged[1].Bytes, readBack.Damaged[1].MissingSeqs));
    }

    [Fact]
    public async Task A_record_with_a_good_checksum_but_no_room_message_in_it_counts_as_corrupt()
    {
        await using (var store = Open()) store.Append("#books", Messages("#books", 1, 1));
        var payload = Encoding.UTF8.GetBytes("""{"type":"logged","note":"no message here"}""");
        var header = new byte[8];
        BitConverter.TryWriteBytes(header.AsSpan(0, 4), (uint)payload.Length);
        BitConverter.TryWriteBytes(header.AsSpan(4, 4), System.IO.Hashing.Crc32.HashToUInt32(payload));
        await using (var file = new FileStream(LogFile("#books"), FileMode.Append))
        {
            file.Write(header);
            file.Write(payload);
        }
        await using (var store = Open()) { }

        Assert.Contains(_log.Lines, line => line.Contains($"dropped the last {8 + payload.Length} bytes") && line.Contains("not a room message"));
        Assert.Equal(Messages("#books", 1, 1), (await ReopenAsync())["#books"]);
    }

    [Fact]
    public async Task A_record_of_another_room_counts_as_corrupt()
    {
        await using (var store = Open()) store.Append("#books", Messages("#books", 1, 1));
        await using (var file = new FileStream(LogFile("#books"), FileMode.Append)) file.Write(Record(Message("#games", 2)));

        Assert.Equal(Messages("#books", 1, 1), (await ReopenAsync())["#books"]);
        Assert.Contains(_log.Lines, line => line.Contains("a record of room #games, not #books"));
    }

    [Fact]
    public async Task A_length_no_record_can_have_ends_the_log_without_reading_it()
    {
        await using (var store = Open()) store.Append("#books", Messages("#books", 1, 1));
        await using (var file = new FileStream(LogFile("#books"), FileMode.Append)) file.Write(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 1, 2, 3 });

        Assert.Equal(Messages("#books", 1, 1), (await ReopenAsync())["#books"]);
        Assert.Contains(_log.Lines, line => line.Contains("dropped the last 11 bytes") && line.Contains("more than any record"));
    }

    [Fact]
    public async Task A_rewrite_makes_the_log_exactly_the_given_messages()
    {
        await using (var store = Open())
        {
            store.Append("#books", Messages("#books", 1, 5));
            store.Rewrite("#books", ListModule.OfSeq([Message("#books", 1), Message("#books", 2), Message("#books", 3, "the owner's third")]));
            store.Append("#books", Messages("#books", 4, 4));
        }

        var recovered = await ReopenAsync();

        Assert.Equal([Message("#books", 1), Message("#books", 2), Message("#books", 3, "the owner's third"), Message("#books", 4)], recovered["#books"]);
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));
    }

    [Fact]
    public async Task A_rewrite_of_a_room_without_a_log_creates_it()
    {
        await using (var store = Open()) store.Rewrite("#new", Messages("#new", 7, 9));

        Assert.Equal(Messages("#new", 7, 9), (await ReopenAsync())["#new"]);
    }

    [Fact]
    public async Task A_rewrite_that_never_finished_is_removed_and_the_log_kept()
    {
        await using (var store = Open()) store.Append("#books", Messages("#books", 1, 2));
        await File.WriteAllBytesAsync(LogFile("#books") + ".tmp", Record(Message("#books", 1, "half a state transfer")));

        var recovered = await ReopenAsync();

        Assert.Equal(Messages("#books", 1, 2), recovered["#books"]);
        Assert.False(File.Exists(LogFile("#books") + ".tmp"));
        Assert.Contains(_log.Lines, line => line.Contains("a log rewrite that did not finish"));
    }

    [Fact]
    public async Task Text_in_any_script_and_with_JSON_special_characters_comes_back_unchanged()
    {
        string[] texts =
        [
            "héllo wörld", "日本語のテキスト", "مرحبا بالعالم", "emoji 🎉👩‍💻🏳️‍🌈", "quotes \" and \\ backslash",
            "a\nnew line and a\ttab", "zero-width\u200Bspace", "\u0000 nul",
        ];
        var messages = texts.Select((text, index) => Message("#intl", index + 1, text, from: "zoë")).ToList();
        await using (var store = Open()) store.Append("#intl", ListModule.OfSeq(messages));

        Assert.Equal(messages, (await ReopenAsync())["#intl"]);
    }

    [Fact]
    public async Task An_empty_log_is_a_room_with_no_messages()
    {
        await File.WriteAllBytesAsync(LogFile("#quiet"), []);

        var recovered = await ReopenAsync();

        Assert.Empty(recovered["#quiet"]);
        Assert.Contains("recovered #quiet: 0 messages (last seq 0)", _log.Lines);
        Assert.DoesNotContain(_log.Lines, line => line.Contains("dropped"));
    }

    [Fact]
    public async Task Files_that_are_not_room_logs_are_left_alone()
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "Notes.log"), "not a room: upper case");
        await File.WriteAllTextAsync(Path.Combine(_directory, "readme.txt"), "not a log");

        Assert.Empty(await ReopenAsync());
        Assert.True(File.Exists(Path.Combine(_directory, "Notes.log")));
    }

    [Fact]
    public async Task Only_the_newest_messages_a_history_can_hold_are_kept_in_memory()
    {
        var total = Rooms.historyCapacity + 10;
        await using (var store = Open()) store.Append("#busy", Messages("#busy", 1, total));

        var recovered = await ReopenAsync();

        Assert.Equal(Messages("#busy", 11, total), recovered["#busy"]);
        Assert.Contains($"recovered #busy: {total} messages (last seq {total})", _log.Lines);
    }

    [Theory]
    [InlineData("always")]
    [InlineData("batch")]
    [InlineData("never")]
    public async Task Every_policy_hands_each_append_to_the_operating_system_at_once(string policy)
    {
        var fsync = policy switch { "always" => FsyncPolicy.Always, "batch" => FsyncPolicy.Batch, _ => FsyncPolicy.Never };
        await using var store = Open(fsync);

        store.Append("#books", Messages("#books", 1, 2));
        store.MakeWritesDurable();
        store.HeartbeatTicked();

        // Read through another file handle while the store is open: nothing waits in a user-space buffer.
        using var reading = new FileStream(LogFile("#books"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var readBack = LogRecords.ReadAll(reading, "#books", keepLast: 10);
        Assert.Equal(Messages("#books", 1, 2), readBack.Messages);
    }

    [Fact]
    public async Task A_second_store_on_the_same_directory_is_refused_with_a_reason()
    {
        await using var first = Open();

        var refused = Assert.Throws<StorageException>(() => Open());

        Assert.Contains(_directory, refused.Message);
        Assert.Contains("--data-dir", refused.Message);
    }

    [Fact]
    public async Task The_lock_is_released_when_the_store_closes()
    {
        await using (var first = Open()) { }

        await using var second = Open();
    }

    [Fact]
    public void A_data_directory_that_cannot_be_created_is_refused_with_a_reason()
    {
        var file = Path.Combine(_directory, "a-file");
        File.WriteAllText(file, "in the way");

        var refused = Assert.Throws<StorageException>(() => RoomLogStore.Open(Path.Combine(file, "data"), FsyncPolicy.Batch, _log));

        Assert.Contains("cannot create the data directory", refused.Message);
    }

    /// <summary>Every log line, formatted, so tests can check what an operator would read.</summary>
    private sealed class RecordingLogger : ILogger
    {
        private readonly List<string> _lines = new();

        public IReadOnlyList<string> Lines { get { lock (_lines) return _lines.ToList(); } }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines) _lines.Add(formatter(state, exception));
        }
    }
}
