using FormalChat.Node.Irc;
using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FormalChat.Cluster.Tests.Irc;

/// <summary>The pure translation between IRC lines and the core's requests and replies (RFC 2812
/// sections cited where a rule comes from it); no sockets.</summary>
public class IrcTranslatorTests
{
    private const int Node = 1;

    private static IrcSession Fresh() => new(Node, firstMessageId: 100);

    /// <summary>A session the core has welcomed as alice, with the lines of that welcome read.</summary>
    private static IrcSession Welcomed(string nick = "alice")
    {
        var session = Fresh();
        IrcTranslator.OnLine(session, $"NICK {nick}");
        IrcTranslator.OnLine(session, $"USER {nick} 0 * :Alice A");
        IrcTranslator.OnReply(session, ServerReply.NewWelcome(Nick.NewNick(nick), Node, FSharpOption<int>.Some(3), "token"));
        IrcTranslator.OnReply(session, ServerReply.NewJoined(Rooms.lobby, FSharpOption<int>.Some(3), 1));
        session.PendingWhos.Clear();
        return session;
    }

    private static UserEntry User(string nick, int node, params string[] rooms) => new(Nick.NewNick(nick), node, ListModule.OfSeq(rooms.Select(RoomName.NewRoomName).Prepend(Rooms.lobby)));

    private static FSharpList<UserEntry> Users(params UserEntry[] users) => ListModule.OfSeq(users);

    [Fact]
    public void Parse_reads_prefix_command_middle_and_trailing_parameters()
    {
        var line = IrcLine.Parse(":alice!a@h PRIVMSG #dev :hello there\r")!;

        Assert.Equal("alice!a@h", line.Prefix);
        Assert.Equal("PRIVMSG", line.Command);
        Assert.Equal(["#dev", "hello there"], line.Parameters);
        Assert.Null(IrcLine.Parse(""));
        Assert.Equal("PING", IrcLine.Parse("@time=x ping token")!.Command);
    }

    [Fact]
    public void Text_too_long_for_one_512_byte_line_is_split_between_characters()
    {
        var head = ":bob!bob@node2.formalchat PRIVMSG #dev :";
        var text = string.Concat(Enumerable.Repeat("é", 700));

        var pieces = IrcLine.SplitToFit(head, text).ToList();

        Assert.True(pieces.Count > 1);
        Assert.Equal(text, string.Concat(pieces));
        Assert.All(pieces, piece => Assert.True(System.Text.Encoding.UTF8.GetByteCount(head + piece) + 2 <= 512));
    }

    [Fact]
    public void Nick_and_user_in_either_order_say_hello_once()
    {
        var session = Fresh();

        var first = IrcTranslator.OnLine(session, "USER alice 0 * :Alice");
        var second = IrcTranslator.OnLine(session, "NICK alice");

        Assert.Empty(first.Requests);
        var hello = Assert.IsType<ClientRequest.Hello>(Assert.Single(second.Requests));
        Assert.Equal("alice", hello.Item.Nick);
        Assert.Null(hello.Item.Session); // None: a fresh session, nothing to resume
    }

    [Fact]
    public void Welcome_gives_001_to_005_with_isupport_and_the_motd()
    {
        var session = Fresh();
        IrcTranslator.OnLine(session, "NICK alice");
        IrcTranslator.OnLine(session, "USER alice 0 * :Alice");

        var lines = IrcTranslator.OnReply(session, ServerReply.NewWelcome(Nick.NewNick("alice"), Node, FSharpOption<int>.Some(3), "token")).Lines;

        Assert.StartsWith(":node1.formalchat 001 alice :Welcome", lines[0]);
        Assert.Equal(["001", "002", "003", "004", "005"], lines.Take(5).Select(line => line.Split(' ')[1]));
        Assert.Contains("CHANTYPES=#", lines[4]);
        Assert.Contains($"NICKLEN={Chat.maxNickLength}", lines[4]);
        Assert.Contains("CASEMAPPING=", lines[4]);
        Assert.Contains(lines, line => line.Split(' ')[1] == "376");
        Assert.True(session.Registered);
    }

    [Fact]
    public void Joined_lobby_after_the_welcome_is_a_join_echo_topic_and_a_names_question()
    {
        var session = Fresh();
        IrcTranslator.OnLine(session, "NICK alice");
        IrcTranslator.OnLine(session, "USER alice 0 * :Alice");
        IrcTranslator.OnReply(session, ServerReply.NewWelcome(Nick.NewNick("alice"), Node, FSharpOption<int>.None, "token"));

        var joined = IrcTranslator.OnReply(session, ServerReply.NewJoined(Rooms.lobby, FSharpOption<int>.Some(3), 1));
        var names = IrcTranslator.OnReply(session, ServerReply.NewWhoListed(FSharpOption<RoomName>.Some(Rooms.lobby), Users(User("alice", 1), User("bob", 2))));

        Assert.Equal(":alice!alice@node1.formalchat JOIN #lobby", joined.Lines[0]);
        Assert.Equal(":node1.formalchat 331 alice #lobby :No topic is set", joined.Lines[1]);
        var who = Assert.IsType<ClientRequest.Who>(Assert.Single(joined.Requests));
        Assert.Equal(Rooms.lobby.Value, who.room!.Value);
        Assert.Equal([":node1.formalchat 353 alice = #lobby :alice bob", ":node1.formalchat 366 alice #lobby :End of NAMES list"], names.Lines);
    }

    [Fact]
    public void A_nick_in_use_is_433_and_the_next_nick_tries_again()
    {
        var session = Fresh();
        IrcTranslator.OnLine(session, "NICK alice");
        IrcTranslator.OnLine(session, "USER alice 0 * :Alice");

        var refused = IrcTranslator.OnReply(session, ServerReply.NewErrorReply(ErrorCode.NickTaken, "the nickname alice is already in use on node 2"));
        var retry = IrcTranslator.OnLine(session, "NICK alice_");

        Assert.StartsWith(":node1.formalchat 433 * alice :Nickname is already in use", Assert.Single(refused.Lines));
        Assert.False(session.Registered);
        Assert.Equal("alice_", Assert.IsType<ClientRequest.Hello>(Assert.Single(retry.Requests)).Item.Nick);
    }

    [Fact]
    public void Pass_before_nick_and_user_goes_with_the_hello_and_too_late_is_462()
    {
        var session = Fresh();

        var pass = IrcTranslator.OnLine(session, "PASS :correct horse");
        IrcTranslator.OnLine(session, "NICK alice");
        var hello = Assert.IsType<ClientRequest.Hello>(Assert.Single(IrcTranslator.OnLine(session, "USER alice 0 * :Alice").Requests));
        var late = IrcTranslator.OnLine(session, "PASS other");

        Assert.Empty(pass.Lines);
        Assert.Equal(Password.NewGiven("correct horse"), hello.Item.Password!.Value);
        // RFC 2812 3.1.1: once registration has started, PASS is 462.
        Assert.StartsWith(":node1.formalchat 462 * :", Assert.Single(late.Lines));
        Assert.StartsWith(":node1.formalchat 461 * PASS :", Assert.Single(IrcTranslator.OnLine(Fresh(), "PASS").Lines));
        // Without PASS the hello carries no password.
        var plain = Fresh();
        IrcTranslator.OnLine(plain, "NICK bob");
        Assert.Null(Assert.IsType<ClientRequest.Hello>(Assert.Single(IrcTranslator.OnLine(plain, "USER bob 0 * :Bob").Requests)).Item.Password);
    }

    [Fact]
    public void A_wrong_or_missing_password_is_464_and_the_closing_line_says_password_incorrect()
    {
        foreach (var code in new[] { ErrorCode.PasswordWrong, ErrorCode.PasswordRequired })
        {
            var session = Fresh();
            IrcTranslator.OnLine(session, "NICK alice");
            IrcTranslator.OnLine(session, "USER alice 0 * :Alice");

            var refused = IrcTranslator.OnReply(session, ServerReply.NewErrorReply(code, "wrong password for alice"));

            Assert.StartsWith(":node1.formalchat 464 * :Password incorrect", Assert.Single(refused.Lines));
            Assert.Empty(refused.Requests);
            Assert.False(session.Registered);
            // The core closes the connection next (CloseClient with the code's name).
            Assert.Equal("ERROR :Closing Link: * (Password incorrect)", IrcTranslator.ClosingLine(session, Wire.errorCodeName(code)));
        }
    }

    [Fact]
    public void An_erroneous_nick_is_432()
    {
        var session = Fresh();
        IrcTranslator.OnLine(session, "NICK al|ce");
        IrcTranslator.OnLine(session, "USER alice 0 * :Alice");

        var refused = IrcTranslator.OnReply(session, ServerReply.NewErrorReply(ErrorCode.NickInvalid, "a nickname uses only letters"));

        Assert.StartsWith(":node1.formalchat 432 * al|ce :Erroneous nickname", Assert.Single(refused.Lines));
    }

    [Fact]
    public void Commands_before_registration_get_451_and_ping_gets_pong()
    {
        var session = Fresh();

        Assert.Equal(":node1.formalchat 451 * :You have not registered", Assert.Single(IrcTranslator.OnLine(session, "JOIN #dev").Lines));
        Assert.Equal(":node1.formalchat PONG node1.formalchat :abc", Assert.Single(IrcTranslator.OnLine(session, "PING abc").Lines));
    }

    [Fact]
    public void Privmsg_to_a_joined_room_is_a_say_and_its_own_copy_is_not_shown()
    {
        var session = Welcomed();
        IrcTranslator.OnReply(session, ServerReply.NewJoined(RoomName.NewRoomName("#dev"), FSharpOption<int>.Some(2), 2));

        var sent = IrcTranslator.OnLine(session, "PRIVMSG #Dev :hello all");
        var say = Assert.IsType<ClientRequest.Say>(Assert.Single(sent.Requests));
        var own = IrcTranslator.OnReply(session, ServerReply.NewMessage(new RoomMessage(RoomName.NewRoomName("#dev"), 7, Nick.NewNick("alice"), 1, "hello all", say.clientMessageId)));
        var other = IrcTranslator.OnReply(session, ServerReply.NewMessage(new RoomMessage(RoomName.NewRoomName("#dev"), 8, Nick.NewNick("bob"), 2, "hi alice", 55)));

        Assert.Equal("#dev", say.room);
        Assert.Equal("hello all", say.text);
        Assert.Empty(own.Lines);
        Assert.Equal(":bob!bob@node2.formalchat PRIVMSG #dev :hi alice", Assert.Single(other.Lines));
    }

    [Fact]
    public void Privmsg_right_behind_a_join_goes_to_the_core_which_takes_them_in_order()
    {
        var session = Welcomed();

        var joined = IrcTranslator.OnLine(session, "JOIN #dev");
        var again = IrcTranslator.OnLine(session, "JOIN #dev");
        var said = IrcTranslator.OnLine(session, "PRIVMSG #dev :first words");

        Assert.IsType<ClientRequest.Join>(Assert.Single(joined.Requests));
        Assert.Empty(again.Requests);
        Assert.Empty(said.Lines);
        Assert.IsType<ClientRequest.Say>(Assert.Single(said.Requests));
    }

    [Fact]
    public void Own_messages_from_an_earlier_connection_in_the_history_are_shown()
    {
        var session = Welcomed();

        var history = IrcTranslator.OnReply(session, ServerReply.NewMessage(new RoomMessage(RoomName.NewRoomName("#lobby"), 3, Nick.NewNick("alice"), 2, "said before", 12)));

        Assert.Equal(":alice!alice@node2.formalchat PRIVMSG #lobby :said before", Assert.Single(history.Lines));
    }

    [Fact]
    public void Privmsg_to_a_room_not_joined_is_404_and_to_a_bad_name_403()
    {
        var session = Welcomed();

        Assert.StartsWith(":node1.formalchat 404 alice #dev ", Assert.Single(IrcTranslator.OnLine(session, "PRIVMSG #dev :hi").Lines));
        Assert.StartsWith(":node1.formalchat 403 alice #d!v ", Assert.Single(IrcTranslator.OnLine(session, "PRIVMSG #d!v :hi").Lines));
        Assert.Empty(IrcTranslator.OnLine(session, "NOTICE #dev :hi").Lines);
    }

    [Fact]
    public void Privmsg_to_a_nick_is_a_whisper_whose_receipt_is_not_shown_and_an_unknown_nick_is_401()
    {
        var session = Welcomed();

        var sent = IrcTranslator.OnLine(session, "PRIVMSG bob :psst");
        var receipt = IrcTranslator.OnReply(session, ServerReply.NewPrivate(new PrivateLine(Nick.NewNick("alice"), 1, Nick.NewNick("bob"), "psst")));
        var incoming = IrcTranslator.OnReply(session, ServerReply.NewPrivate(new PrivateLine(Nick.NewNick("bob"), 2, Nick.NewNick("alice"), "yes?")));
        IrcTranslator.OnLine(session, "PRIVMSG nobody :hello?");
        var unknown = IrcTranslator.OnReply(session, ServerReply.NewErrorReply(ErrorCode.NoSuchUser, "nobody called nobody is online"));

        var whisper = Assert.IsType<ClientRequest.Whisper>(Assert.Single(sent.Requests));
        Assert.Equal(("bob", "psst"), (whisper.toNick, whisper.text));
        Assert.Empty(receipt.Lines);
        Assert.Equal(":bob!bob@node2.formalchat PRIVMSG alice :yes?", Assert.Single(incoming.Lines));
        Assert.Equal(":node1.formalchat 401 alice nobody :No such nick/channel", Assert.Single(unknown.Lines));
    }

    [Fact]
    public void Part_leaves_a_room_but_never_the_lobby()
    {
        var session = Welcomed();
        IrcTranslator.OnReply(session, ServerReply.NewJoined(RoomName.NewRoomName("#dev"), FSharpOption<int>.Some(2), 2));

        var lobby = IrcTranslator.OnLine(session, "PART #lobby");
        var dev = IrcTranslator.OnLine(session, "PART #dev :bye");
        var left = IrcTranslator.OnReply(session, ServerReply.NewLeftRoom(RoomName.NewRoomName("#dev")));

        Assert.StartsWith(":node1.formalchat 442 alice #lobby ", Assert.Single(lobby.Lines));
        Assert.Equal("#dev", Assert.IsType<ClientRequest.Leave>(Assert.Single(dev.Requests)).room);
        Assert.Equal(":alice!alice@node1.formalchat PART #dev", Assert.Single(left.Lines));
    }

    [Fact]
    public void Who_of_a_room_is_352_lines_and_315()
    {
        var session = Welcomed();

        var asked = IrcTranslator.OnLine(session, "WHO #lobby");
        var answer = IrcTranslator.OnReply(session, ServerReply.NewWhoListed(FSharpOption<RoomName>.Some(Rooms.lobby), Users(User("alice", 1), User("bob", 2))));

        Assert.IsType<ClientRequest.Who>(Assert.Single(asked.Requests));
        Assert.Equal(
            [":node1.formalchat 352 alice #lobby alice node1.formalchat node1.formalchat alice H :0 alice",
             ":node1.formalchat 352 alice #lobby bob node2.formalchat node2.formalchat bob H :0 bob",
             ":node1.formalchat 315 alice #lobby :End of WHO list"],
            answer.Lines);
    }

    [Fact]
    public void Ison_names_those_online()
    {
        var session = Welcomed();

        IrcTranslator.OnLine(session, "ISON bob carol dave");
        var answer = IrcTranslator.OnReply(session, ServerReply.NewWhoListed(FSharpOption<RoomName>.None, Users(User("alice", 1), User("bob", 2), User("dave", 3))));

        Assert.Equal(":node1.formalchat 303 alice :bob dave", Assert.Single(answer.Lines));
    }

    [Fact]
    public void List_is_321_a_322_per_room_and_323()
    {
        var session = Welcomed();

        Assert.True(Assert.Single(IrcTranslator.OnLine(session, "LIST").Requests).IsRooms);
        var rooms = ListModule.OfSeq([new RoomSummary(RoomName.NewRoomName("#dev"), FSharpOption<int>.Some(2), FSharpOption<int>.Some(3), 4)]);
        var lines = IrcTranslator.OnReply(session, ServerReply.NewRoomsListed(rooms)).Lines;

        Assert.Equal(":node1.formalchat 321 alice Channel :Users  Name", lines[0]);
        Assert.Equal(":node1.formalchat 322 alice #dev 4 :owned by node 2, backup on node 3", lines[1]);
        Assert.Equal(":node1.formalchat 323 alice :End of LIST", lines[2]);
    }

    [Fact]
    public void Topic_is_read_only_motd_answers_and_unknown_commands_get_421()
    {
        var session = Welcomed();

        Assert.Equal(":node1.formalchat 331 alice #dev :No topic is set", Assert.Single(IrcTranslator.OnLine(session, "TOPIC #dev").Lines));
        Assert.StartsWith(":node1.formalchat 482 alice #dev ", Assert.Single(IrcTranslator.OnLine(session, "TOPIC #dev :new topic").Lines));
        Assert.Equal("375", IrcTranslator.OnLine(session, "MOTD").Lines[0].Split(' ')[1]);
        Assert.Equal(":node1.formalchat 421 alice FROB :Unknown command", Assert.Single(IrcTranslator.OnLine(session, "frob x").Lines));
    }

    [Fact]
    public void Notices_and_redirects_become_server_notices()
    {
        var session = Welcomed();

        var notice = IrcTranslator.OnReply(session, ServerReply.NewNotice("bob joined"));
        var redirect = IrcTranslator.OnReply(session, ServerReply.NewRedirected(2, new Endpoint("127.0.0.1", 5002), "node 1 is busy"));

        Assert.Equal(":node1.formalchat NOTICE alice :bob joined", Assert.Single(notice.Lines));
        Assert.StartsWith(":node1.formalchat NOTICE alice :", Assert.Single(redirect.Lines));
        Assert.Contains("node 2", redirect.Lines[0]);
    }

    [Fact]
    public void Quit_asks_the_core_to_close()
    {
        var session = Welcomed();

        var quit = IrcTranslator.OnLine(session, "QUIT :gone");

        Assert.True(Assert.Single(quit.Requests).IsQuit);
        Assert.Empty(quit.Lines);
        Assert.Equal("ERROR :Closing Link: alice (Quit: gone)", IrcTranslator.ClosingLine(session, "bye"));
    }
}
