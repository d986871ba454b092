/// Reading the fixtures (spec/fixtures/<set>/, made by bash ci/tlc.sh --fixtures) into
/// the TLA+ values of Tla.fs, which the election conformance tests use too: gzipped NDJSON of
/// simulated behaviours written one after another, and TLC's own `-dump dot,actionlabels`
/// state graphs, whose node labels are states in TLA+ text.
module FormalChat.Protocol.Tests.Conformance.PlacementFixtures

open System
open System.IO
open System.IO.Compression
open System.Text
open System.Text.Json
open FormalChat.Protocol.Tests.Conformance.Tla

let parseJson (text: string) : Value =
    use document = JsonDocument.Parse text
    ofJson document.RootElement

/// The (argument, value) pairs of a function however TLC wrote it: a sequence is a function
/// on 1..n, a record (or JSON object) a function on its field names, and an empty sequence
/// or set the empty function.
let asFunction (value: Value) : (Value * Value) list =
    match value with
    | Function pairs -> pairs
    | Record fields -> [ for KeyValue(k, v) in fields -> Str k, v ]
    | Seq items -> items |> List.mapi (fun index item -> Int(index + 1), item)
    | SetOf [] -> []
    | other -> failwithf "expected a function, got %s" (show other)

/// The text of a file, gunzipped when its name ends in .gz.
let readText (path: string) : string =
    if path.EndsWith(".gz", StringComparison.Ordinal) then
        use file = File.OpenRead path
        use gzip = new GZipStream(file, CompressionMode.Decompress)
        use reader = new StreamReader(gzip, Encoding.UTF8)
        reader.ReadToEnd()
    else
        File.ReadAllText path

/// One state of a simulated behaviour: TLC's whole `_action` field (name, location, context)
/// and the variables.
type TraceState =
    { Action: Value
      Variables: Map<string, Value> }

/// Behaviours written one after another as NDJSON, each starting with its Init state.
let readBehaviours (path: string) : TraceState list list =
    let states =
        [ for line in (readText path).Split('\n') do
              if not (String.IsNullOrWhiteSpace line) then
                  match parseJson line with
                  | Record fields ->
                      { Action = fields |> Map.tryFind "_action" |> Option.defaultValue (Record Map.empty)
                        Variables = fields.Remove "_action" }
                  | other -> failwithf "a state must be a JSON object: %s" (show other) ]
    let isInit (state: TraceState) =
        match state.Action with
        | Record fields -> fields.TryFind "name" = Some(Str "Init")
        | _ -> false
    states
    |> List.fold
        (fun (behaviours: TraceState list list) state ->
            match behaviours with
            | current :: earlier when not (isInit state) -> (state :: current) :: earlier
            | _ -> [ state ] :: behaviours)
        []
    |> List.map List.rev
    |> List.rev

/// TLC's state graph as `-dump dot,actionlabels` writes it: states by node id (the state's
/// fingerprint), the initial states, and every edge with its action label.
type DotGraph =
    { States: Map<string, Map<string, Value>>
      Initial: Set<string>
      Edges: (string * string * string) list }

let private unescapeDot (text: string) =
    let value = StringBuilder()
    let mutable i = 0
    while i < text.Length do
        if text[i] = '\\' && i + 1 < text.Length then
            value.Append(match text[i + 1] with 'n' -> '\n' | other -> other) |> ignore
            i <- i + 2
        else
            value.Append(text[i]) |> ignore
            i <- i + 1
    value.ToString()

/// The quoted attribute `name="..."` of a dot line, unescaped.
let private dotAttribute (name: string) (line: string) : string option =
    let start = line.IndexOf(name + "=\"", StringComparison.Ordinal)
    if start < 0 then
        None
    else
        let first = start + name.Length + 2
        let mutable i = first
        while i < line.Length && line[i] <> '"' do
            i <- i + (if line[i] = '\\' then 2 else 1)
        Some(unescapeDot (line.Substring(first, i - first)))

let readDotGraph (path: string) : DotGraph =
    let states = Collections.Generic.Dictionary<string, Map<string, Value>>()
    let initial = ResizeArray<string>()
    let edges = ResizeArray<string * string * string>()
    for line in (readText path).Split('\n') do
        let line = line.Trim()
        if line.Length > 0 && (Char.IsDigit line[0] || line[0] = '-') then
            let words = line.Split(' ')
            if words.Length > 2 && words[1] = "->" then
                edges.Add(words[0], words[2], dotAttribute "label" line |> Option.defaultValue "")
            else
                match dotAttribute "label" line with
                | Some label ->
                    states[words[0]] <- parseState label
                    if line.Contains("style = filled", StringComparison.Ordinal) then initial.Add words[0]
                | None -> ()
    { States = states |> Seq.map (fun pair -> pair.Key, pair.Value) |> Map.ofSeq
      Initial = Set.ofSeq initial
      Edges = List.ofSeq edges }
