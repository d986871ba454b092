/// The client console's command line: `--nick alice [--server host:port]`, or the prior art's
/// `alice localhost 5001`.
module FormalChat.CommandLine.ClientCommandLine

open Argu
open FormalChat.Protocol
open FormalChat.CommandLine.Validation

type ClientArgs =
    | [<AltCommandLine("-n")>] Nick of nick: string
    | [<AltCommandLine("-s")>] Server of address: string
    | Peer of address: string
    | Multicast of group: string
    | Interface of address: string
    | Json
    // TLS to the node's client port (docs/SECURITY.md).
    | Tls
    | Tls_Ca of pem: string
    | Tls_Insecure_Skip_Verify
    // Accounts (docs/SECURITY.md): a registered nickname needs its password to say hello.
    | Password of password: string
    | Ask_Password
    | [<MainCommand; Hidden>] Positional of words: string list

    interface IArgParserTemplate with
        member this.Usage =
            match this with
            | Tls -> "connect with TLS, trusting the system's certificate authorities"
            | Tls_Ca _ -> "connect with TLS, trusting only the CA (or self-signed certificate) in this PEM file"
            | Tls_Insecure_Skip_Verify -> "connect with TLS but accept any certificate: encrypted, NOT authenticated (anyone on the path can read everything); for tests only"
            | Password _ -> "the password of your registered nickname (see /register); visible to other local users in the process list, so prefer --ask-password"
            | Ask_Password -> "ask for the password of your registered nickname before connecting (not echoed)"
            | Nick _ -> "your nickname (letters, digits, '_' and '-')"
            | Server _ -> "node to connect to as host:port (default: discover the least-loaded node)"
            | Peer _ -> "client address host:port of any node to ask for the cluster (repeatable), instead of multicast"
            | Multicast _ -> $"discovery group to listen to as group:port (default {Defaults.multicastGroup})"
            | Interface _ -> $"interface address for multicast (default {Defaults.host})"
            | Json -> "print one JSON object per line for every event (for scripts)"
            | Positional _ -> "prior-art form: <nick> <host> <port>"

/// The nickname, and the server when the prior-art form names one: `alice`, `alice host port`.
let private positionalForm (args: ParseResults<ClientArgs>) : string option * string option =
    let positional = args.GetResult(ClientArgs.Positional, defaultValue = [])
    match positional |> List.tryFind (fun word -> word.StartsWith "-") with
    | Some flag -> raise (Invalid $"unknown option '{flag}'")
    | None -> ()
    check (positional.IsEmpty || not (args.Contains ClientArgs.Nick)) "give the nickname either as --nick or as the first word, not both"
    match positional with
    | [] -> None, None
    | [ nick ] -> Some nick, None
    | [ nick; host; port ] -> Some nick, Some $"{host}:{port}"
    | [ nick; server ] -> Some nick, Some server
    | _ -> raise (Invalid "expected: <nick> [<host> <port>]")

let private tlsOf (args: ParseResults<ClientArgs>) : ClientTlsOptions option =
    match args.TryGetResult ClientArgs.Tls_Ca, args.Contains ClientArgs.Tls_Insecure_Skip_Verify with
    | Some _, true -> raise (Invalid "--tls-ca and --tls-insecure-skip-verify exclude each other: trust a CA, or check nothing")
    | Some ca, false -> Some { CaFile = Some ca; SkipVerify = false }
    | None, true -> Some { CaFile = None; SkipVerify = true }
    | None, false -> if args.Contains ClientArgs.Tls then Some { CaFile = None; SkipVerify = false } else None

/// `alice localhost 5001` (the prior art's form) means `--nick alice --server localhost:5001`.
let parse (argv: string array) : Result<ClientOptions, UsageError> =
    parseWith<ClientArgs, ClientOptions> "Client.CSharp" argv (fun args ->
        let nickWord, serverWords = positionalForm args
        let nick =
            match args.TryGetResult ClientArgs.Nick, nickWord with
            | Some nick, _
            | None, Some nick -> nick
            | None, None -> raise (Invalid "--nick is required")
        match Chat.validateNick nick with
        | Result.Error reason -> raise (Invalid reason)
        | Ok _ -> ()
        let iface = multicastInterface (args.TryGetResult ClientArgs.Interface)
        { Nick = nick
          Server = args.TryGetResult ClientArgs.Server |> Option.orElse serverWords |> Option.map (endpoint "--server")
          Discovery =
            { MulticastGroup = args.TryGetResult ClientArgs.Multicast |> Option.map multicastGroup |> Option.defaultValue Defaults.multicastGroup
              MulticastInterface = iface
              Seeds = args.GetResults ClientArgs.Peer |> List.map (endpoint "--peer") }
          Json = args.Contains ClientArgs.Json
          Tls = tlsOf args
          Password = args.TryGetResult ClientArgs.Password
          AskPassword = args.Contains ClientArgs.Ask_Password })
