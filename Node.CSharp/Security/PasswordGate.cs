using FormalChat.Protocol;
using Microsoft.FSharp.Core;

namespace FormalChat.Node.Security;

/// <summary>
/// Where a client's password stops (docs/SECURITY.md, "Accounts"): before a request reaches the
/// core, a <c>register</c>'s password becomes a new PBKDF2 record, and a <c>hello</c>'s password is
/// checked against the record the nick has in the node's state, becoming that record (matched) or
/// Mismatched. The core never sees a password (Messages.Password); it only compares records.
/// Runs on the connection's own task, not the node's loop: a check costs tens of milliseconds.
/// </summary>
public sealed class PasswordGate(Func<string, string?> recordOf)
{
    /// <summary>
    /// The request as the core is to see it; null with <paramref name="refusal"/> set when the
    /// request is refused here (a password that is empty or too long).
    /// </summary>
    public ClientRequest? Check(ClientRequest request, out string? refusal)
    {
        refusal = null;
        switch (request)
        {
            case ClientRequest.Hello { Item.Password.Value: Password.Given given } hello:
                return ClientRequest.NewHello(WithPassword(hello.Item, Verdict(hello.Item.Nick, given.password)));
            case ClientRequest.Register { password: Password.Given given }:
                refusal = Invalid(given.password);
                return refusal is null ? ClientRequest.NewRegister(Password.NewHashed(PasswordHasher.Hash(given.password))) : null;
            default:
                return request;
        }
    }

    /// <summary>No account: the password is dropped (there is nothing to check it against).</summary>
    private FSharpOption<Password> Verdict(string nick, string password) =>
        recordOf(nick) is { } record
            ? FSharpOption<Password>.Some(PasswordHasher.Verify(password, record) ? Password.NewHashed(record) : Password.Mismatched)
            : FSharpOption<Password>.None;

    private static HelloRequest WithPassword(HelloRequest hello, FSharpOption<Password> password) =>
        new(hello.Nick, hello.Session, hello.Resume, password);

    private static string? Invalid(string password) =>
        password.Length == 0 ? "a password needs at least one character"
        : password.Length > Accounts.maxPasswordLength ? $"a password has at most {Accounts.maxPasswordLength} characters"
        : null;
}
