using FormalChat.Client;
using FormalChat.Protocol;

namespace FormalChat.Cluster.Tests;

/// The client's command line grammar (Client.CSharp/CommandParser.cs): pure, no sockets.
public class ClientCommandTests
{
    private static readonly Func<string, bool> BobIsOnline = nick => nick == "bob";

    private static Command Parse(string line) => CommandParser.Parse(line, BobIsOnline);

    private static ClientRequest RequestOf(Command command) => Assert.IsType<SendRequest>(command).Request;

    [Theory]
    [InlineData("hello everyone", "hello everyone")]
    [InlineData("  padded  ", "padded")]
    [InlineData("//slash at the start", "/slash at the start")]
    [InlineData("quit now", "quit now")]
    public void A_plain_line_is_a_broadcast(string line, string text) =>
        Assert.Equal(ClientRequest.NewSay(text), RequestOf(Parse(line)));

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
    public void Send_otherwise_is_a_broadcast(string line, string text) =>
        Assert.Equal(ClientRequest.NewSay(text), RequestOf(Parse(line)));

    [Fact]
    public void Who_and_status_are_requests()
    {
        Assert.Equal(ClientRequest.Who, RequestOf(Parse("/who")));
        Assert.Equal(ClientRequest.Status, RequestOf(Parse("/STATUS")));
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
    public void Mistakes_are_local_errors_and_send_nothing(string line, string reason) =>
        Assert.StartsWith(reason, Assert.IsType<LocalError>(Parse(line)).Reason);

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void An_empty_line_does_nothing(string line) => Assert.IsType<NoCommand>(Parse(line));
}
