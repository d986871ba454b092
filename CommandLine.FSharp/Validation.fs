/// The checks both command lines share, and the one way a parse fails: a reason that is printed
/// above the usage text.
module internal FormalChat.CommandLine.Validation

open Argu
open FormalChat.Protocol

exception Invalid of string

let check condition message = if not condition then raise (Invalid message)

let validPort (flag: string) (port: int) : int =
    check (port > 0 && port < 65536) $"{flag} must be a port between 1 and 65535"
    port

let endpoint (flag: string) (text: string) : Endpoint =
    match Endpoint.tryParse text with
    | Some endpoint -> endpoint
    | None -> raise (Invalid $"{flag} takes host:port, not '{text}'")

let multicastGroup (text: string) : Endpoint =
    match Endpoint.tryParse text with
    | Some group when System.Net.IPAddress.TryParse(group.Host) |> fst -> group
    | _ -> raise (Invalid $"--multicast takes group:port, e.g. {Defaults.multicastGroup}, not '{text}'")

/// The multicast interface (--interface), the default one when not given.
let multicastInterface (text: string option) : string =
    let iface = defaultArg text Defaults.host
    check (System.Net.IPAddress.TryParse(iface) |> fst) $"--interface takes an IPv4 address, not '{iface}'"
    iface

let timing heartbeat suspect (multicast: string option) noMulticast (iface: string option) : Timing =
    check (heartbeat >= 10 && heartbeat <= 600_000) "--heartbeat-ms must be between 10 and 600000"
    check (suspect >= 1 && suspect <= 100) "--suspect-after must be between 1 and 100"
    let iface = multicastInterface iface
    { HeartbeatIntervalMs = heartbeat
      SuspectAfter = suspect
      MulticastGroup = if noMulticast then None else Some(multicast |> Option.map multicastGroup |> Option.defaultValue Defaults.multicastGroup)
      MulticastInterface = iface }

let fsyncPolicy (text: string) : FsyncPolicy =
    match FsyncPolicy.All |> List.tryFind (fun policy -> policy.Name = text.ToLowerInvariant()) with
    | Some policy -> policy
    | None -> raise (Invalid $"--fsync takes always, batch or never, not '{text}'")

/// A path only: whether it can be created and locked is the node's to find out when it starts.
let dataDir (text: string) : string =
    check (not (System.String.IsNullOrWhiteSpace text)) "--data-dir takes a directory path, not an empty one"
    text

/// Runs Argu, then `build`; a mistake either finds becomes the message to print with the usage.
let parseWith<'T, 'R when 'T :> IArgParserTemplate> (programName: string) (argv: string array) (build: ParseResults<'T> -> 'R) : Result<'R, UsageError> =
    let parser = ArgumentParser.Create<'T>(programName = programName)
    try
        Ok(build (parser.ParseCommandLine(argv, raiseOnUsage = true)))
    with
    | :? ArguParseException as error -> Result.Error { Message = error.Message; IsHelp = (error.ErrorCode = ErrorCode.HelpText) }
    | Invalid reason -> Result.Error { Message = $"ERROR: {reason}\n\n{parser.PrintUsage()}"; IsHelp = false }
