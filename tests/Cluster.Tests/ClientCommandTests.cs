using FormalChat.Client;
using FormalChat.Protocol;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FormalChat.Cluster.Tests;

/// The client's pure parts (Client.CSharp): the command grammar, the reconnect line, the choice
/// of node, discovery's stop rule. No sockets. (The session across a failover is
/// Protocol.FSharp/ClientSession.fs, tested in Protocol.Tests.)
public class ClientCommandTests
{
    private static readonly Func<string, bool> BobIsOnline = nick => nick == "bob";

    private static Command Parse(string line, string currentRoom = "#lobby") => CommandParser.Parse(line, currentRoom, BobIsOnline);

    private static ClientRequest RequestOf(Command command) => Assert.IsType<SendRequest>(command).Request;

    // -----------------------------------------------------------------------------------------
    // Commands.

    [Theory]
    [InlineData("hello everyone", "hello everyone")]
    [InlineData("  padded  ", "padded")]
    [InlineData("//slash at the start", "/slash at the start")]
    [InlineData("quit now", "quit now")]
    public void A_plain_line_goes_to_the_current_room(string line, string text)
    {
        Assert.Equal(new Speak("#lobby", text), Parse(line));
        Assert.Equal(new Speak("#dev", text), Parse(line, currentRoom: "#dev"));
    }

    [Fact]
    public void Slash_msg_is_private_to_any_nick_known_or_not() =>
        Assert.Equal(ClientRequest.NewWhisper("carol", "hi there"), RequestOf(Parse("/msg carol hi there")));

    [Fact]
    public void Send_to_a_known_online_nick_is_private() =>
        Assert.Equal(ClientRequest.NewWhisper("bob", "Hi Bob!"), RequestOf(Parse("send bob Hi Bob!")));

    [Theory]
    [InlineData("send Hello everyone!", "Hello everyone!")]
    [InlineData("send carol is not online", "carol is not online")]
    [InlineData("send bob", "bob")]
    public void Send_otherwise_is_a_broadcast_to_the_lobby_whatever_the_current_room(string line, string text) =>
        Assert.Equal(new Speak("#lobby", text), Parse(line, currentRoom: "#dev"));

    [Fact]
    public void Who_rooms_and_status_are_requests()
    {
        Assert.Equal(ClientRequest.NewWho(FSharpOption<string>.None), RequestOf(Parse("/who")));
        Assert.Equal(ClientRequest.NewWho(FSharpOption<string>.Some("#dev")), RequestOf(Parse("/who #dev")));
        Assert.Equal(ClientRequest.Rooms, RequestOf(Parse("/rooms")));
        Assert.Equal(ClientRequest.Status, RequestOf(Parse("/STATUS")));
    }

    [Fact]
    public void Register_sends_the_rest_of_the_line_as_the_password()
    {
        Assert.Equal(ClientRequest.NewRegister(Password.NewGiven("correct horse  battery")), RequestOf(Parse("/register correct horse  battery")));
        Assert.IsType<LocalError>(Parse("/register"));
    }

    [Theory]
    [InlineData("/join #dev", "#dev")]
    [InlineData("/join #Dev", "#dev")]
    [InlineData("/join dev", "#dev")]
    public void Join_names_a_room_with_or_without_the_hash(string line, string room) =>
        Assert.Equal(ClientRequest.NewJoin(room), RequestOf(Parse(line)));

    [Fact]
    public void Leave_without_a_room_leaves_the_current_room()
    {
        Assert.Equal(ClientRequest.NewLeave("#dev"), RequestOf(Parse("/leave", currentRoom: "#dev")));
        Assert.Equal(ClientRequest.NewLeave("#ops"), RequestOf(Parse("/leave #ops", currentRoom: "#dev")));
    }

    [Fact]
    public void Say_names_its_room_and_room_switches()
    {
        Assert.Equal(new Speak("#dev", "ship it now"), Parse("/say #dev ship it now"));
        Assert.Equal(new SwitchRoom("#dev"), Parse("/room #dev"));
    }

    [Theory]
    [InlineData("/quit")]
    [InlineData("quit")]
    public void Quit_leaves(string line) => Assert.IsType<QuitChat>(Parse(line));

    [Fact]
    public void Help_is_local() => Assert.IsType<ShowHelp>(Parse("/help"));

    [Theory]
    [InlineData("/bogus", "unknown command /bogus")]
    [InlineData("/msg bob", "usage: /msg")]
    [InlineData("/msg", "usage: /msg")]
    [InlineData("send", "usage: send")]
    [InlineData("/join", "usage: /join")]
    [InlineData("/join #a #b", "usage: /join")]
    [InlineData("/join #no spaces", "usage: /join")]
    [InlineData("/join #bad!name", "a room name uses only")]
    [InlineData("/say #dev", "usage: /say")]
    [InlineData("/room", "usage: /room")]
    [InlineData("/who #dev extra", "usage: /who")]
    public void Mistakes_are_local_errors_and_send_nothing(string line, string reason) =>
        Assert.StartsWith(reason, Assert.IsType<LocalError>(Parse(line)).Reason);

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void An_empty_line_does_nothing(string line) => Assert.IsType<NoCommand>(Parse(line));

    // -----------------------------------------------------------------------------------------
    // The reconnect line.

    [Fact]
    public void The_reconnect_line_names_the_nodes_and_every_resumed_room()
    {
        var failed = new ReconnectReport(2, 3, false, "connection lost", ListModule.OfSeq([Tuple.Create(RoomName.NewRoomName("#lobby"), 1042L), Tuple.Create(RoomName.NewRoomName("#dev"), 7L)]));
        Assert.Equal("reconnected to node 2 after node 3 failed; resumed #lobby from 1042, #dev from 7", failed.Describe());
        var moved = new ReconnectReport(2, 1, true, "node 2 has 0 clients, this node 9", ListModule.OfSeq([Tuple.Create(RoomName.NewRoomName("#lobby"), 5L)]));
        Assert.Equal("moved to node 2 (redirected: node 2 has 0 clients, this node 9); resumed #lobby from 5", moved.Describe());
    }

    // -----------------------------------------------------------------------------------------
    // Choosing a node.

    private static NodeCandidate Node(int id, int clients) => new(id, new Endpoint("127.0.0.1", 5000 + id), clients);

    [Fact]
    public void The_least_loaded_node_wins_and_the_lower_id_breaks_a_tie()
    {
        var ranked = NodeChoice.Rank([Node(1, 3), Node(3, 0), Node(2, 0), Node(4, 5)]);
        Assert.Equal([2, 3, 1, 4], ranked.Select(node => node.Id));
    }

    [Fact]
    public void The_failed_node_is_never_a_candidate() =>
        Assert.Equal([1, 2], NodeChoice.Rank([Node(1, 3), Node(3, 0), Node(2, 4)], excluding: 3).Select(node => node.Id));

    [Fact]
    public void The_choice_is_announced_with_its_reason()
    {
        var nodes = NodeChoice.Rank([Node(1, 3), Node(2, 0), Node(3, 5)]);
        Assert.Equal("connecting to node 2 at 127.0.0.1:5002 (least loaded: 0 clients; nodes 1:3 2:0 3:5)",
            NodeChoice.Announcement(nodes[0], nodes));
    }

    [Fact]
    public void A_seed_status_is_taken_as_reported_because_the_probe_asks_before_hello()
    {
        var status = new ClusterStatus(1, FSharpOption<int>.Some(2), 4, ListModule.OfSeq(new[]
        {
            new NodeStatus(1, new Endpoint("127.0.0.1", 5001), new Load(3, 0, 0), false, true),
            new NodeStatus(2, new Endpoint("127.0.0.1", 5002), new Load(2, 1, 0), true, false),
        }), ListModule.Empty<RoomName>());
        Assert.Equal([3, 2], NodeChoice.FromStatus(status).Select(node => node.Clients));
    }

    // -----------------------------------------------------------------------------------------
    // Discovery: when to stop listening to heartbeats.

    private static Heartbeat Beat(int id, int clients, params int[] known) =>
        new(Info(id), 1, FSharpOption<int>.None, new Load(clients, 0, 0), ListModule.OfSeq(known.Select(Info)));

    private static NodeInfo Info(int id) => new(id, new Endpoint("127.0.0.1", 5000 + id), new Endpoint("127.0.0.1", 6000 + id));

    private static TimeSpan Ms(int milliseconds) => TimeSpan.FromMilliseconds(milliseconds);

    [Fact]
    public void Listening_stops_once_every_node_named_in_heartbeats_was_heard()
    {
        var collector = new HeartbeatCollector();
        collector.Heard(Beat(1, 3, 2, 3), Ms(10));
        collector.Heard(Beat(2, 0, 1, 3), Ms(40));
        Assert.False(collector.IsComplete(Ms(50)));
        collector.Heard(Beat(3, 5, 1, 2), Ms(60));
        Assert.True(collector.IsComplete(Ms(60)));
        Assert.Equal([2, 1, 3], NodeChoice.Rank(collector.Nodes).Select(node => node.Id));
    }

    [Fact]
    public void Listening_stops_one_interval_after_it_began_when_a_named_node_is_silent()
    {
        // Node 9 is named but dead; node 1 beats every 200 ms, so after 200 ms (+ margin) all live nodes were heard.
        var collector = new HeartbeatCollector();
        collector.Heard(Beat(1, 0, 9), Ms(20));
        collector.Heard(Beat(1, 0, 9), Ms(220));
        Assert.False(collector.IsComplete(Ms(250)));
        Assert.True(collector.IsComplete(Ms(320)));
    }

    [Fact]
    public void Listening_never_exceeds_the_longest_wait()
    {
        var collector = new HeartbeatCollector();
        Assert.False(collector.IsComplete(Ms(2000)));
        Assert.True(collector.IsComplete(HeartbeatCollector.MaxWait));
        Assert.Empty(collector.Nodes);
    }
}
