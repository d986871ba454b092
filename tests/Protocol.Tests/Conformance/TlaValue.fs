/// TLA+ values as TLC writes them, for the conformance tests: the NDJSON of simulated
/// behaviours (the Json module's ndJsonSerialize) and the state graphs of `-dump dot`, whose
/// node labels print each variable as a TLA+ expression (`/\ msgs = {[type |-> "place", ...]}`).
/// Both are read into one value type, so one abstraction function maps either to F# values.
/// Nothing here knows a particular spec.
module FormalChat.Protocol.Tests.Conformance.TlaValue

open System
open System.IO
open System.IO.Compression
open System.Text
open System.Text.Json

/// A TLA+ value. JSON cannot tell a set from a sequence, nor a record from a function with
/// string keys, so the readers below accept either where both can appear.
type TlaValue =
    | TInt of int64
    | TStr of string
    | TBool of bool
    /// <<a, b>>, and every JSON array.
    | TSeq of TlaValue list
    /// {a, b}.
    | TSet of TlaValue list
    /// [field |-> value], and every JSON object.
    | TRecord of Map<string, TlaValue>
    /// (k1 :> v1 @@ k2 :> v2): a function TLC prints neither as a sequence nor as a record.
    | TFun of (TlaValue * TlaValue) list

exception TlaFormatError of string

let private fail message = raise (TlaFormatError message)

let rec print (value: TlaValue) : string =
    match value with
    | TInt n -> string n
    | TStr s -> "\"" + s + "\""
    | TBool b -> if b then "TRUE" else "FALSE"
    | TSeq items -> "<<" + String.Join(", ", items |> List.map print) + ">>"
    | TSet items -> "{" + String.Join(", ", items |> List.map print) + "}"
    | TRecord fields -> "[" + String.Join(", ", [ for KeyValue(k, v) in fields -> $"{k} |-> {print v}" ]) + "]"
    | TFun pairs -> "(" + String.Join(" @@ ", [ for k, v in pairs -> $"{print k} :> {print v}" ]) + ")"

// ---------------------------------------------------------------------------------------------
// Reading a value by its expected shape.

let asInt (value: TlaValue) : int =
    match value with
    | TInt n -> int n
    | other -> fail $"expected an integer, found {print other}"

let asString (value: TlaValue) : string =
    match value with
    | TStr s -> s
    | other -> fail $"expected a string, found {print other}"

let asBool (value: TlaValue) : bool =
    match value with
    | TBool b -> b
    | other -> fail $"expected a boolean, found {print other}"

/// The elements of a set or a sequence.
let items (value: TlaValue) : TlaValue list =
    match value with
    | TSeq items
    | TSet items -> items
    | other -> fail $"expected a set or a sequence, found {print other}"

/// A field of a record (or of a function with string keys).
let field (name: string) (value: TlaValue) : TlaValue =
    match value with
    | TRecord fields when fields.ContainsKey name -> fields[name]
    | TFun pairs when pairs |> List.exists (fst >> (=) (TStr name)) -> pairs |> List.find (fst >> (=) (TStr name)) |> snd
    | other -> fail $"expected a record with the field {name}, found {print other}"

/// The (argument, value) pairs of a function however TLC wrote it: a sequence is a function
/// on 1..n, a record a function on its field names, and an empty sequence or set the empty
/// function.
let pairs (value: TlaValue) : (TlaValue * TlaValue) list =
    match value with
    | TFun pairs -> pairs
    | TRecord fields -> [ for KeyValue(k, v) in fields -> TStr k, v ]
    | TSeq items -> items |> List.mapi (fun index item -> TInt(int64 (index + 1)), item)
    | TSet [] -> []
    | other -> fail $"expected a function, found {print other}"

// ---------------------------------------------------------------------------------------------
// JSON (ndJsonSerialize, JsonSerialize).

let rec ofJson (element: JsonElement) : TlaValue =
    match element.ValueKind with
    | JsonValueKind.Number -> TInt(element.GetInt64())
    | JsonValueKind.String -> TStr(element.GetString() |> Option.ofObj |> Option.defaultValue "")
    | JsonValueKind.True -> TBool true
    | JsonValueKind.False -> TBool false
    | JsonValueKind.Array -> TSeq [ for item in element.EnumerateArray() -> ofJson item ]
    | JsonValueKind.Object -> TRecord(Map.ofList [ for property in element.EnumerateObject() -> property.Name, ofJson property.Value ])
    | kind -> fail $"a JSON {kind} is no TLA+ value"

let parseJson (text: string) : TlaValue =
    use document = JsonDocument.Parse text
    ofJson document.RootElement

// ---------------------------------------------------------------------------------------------
// TLA+ expressions as TLC prints values.

type private Token =
    | Symbol of string
    | Number of int64
    | Text of string
    | Name of string

let private tokenize (text: string) : Token list =
    let tokens = ResizeArray<Token>()
    let symbols = [ "<<"; ">>"; "|->"; ":>"; "@@"; "/\\"; "{"; "}"; "["; "]"; "("; ")"; ","; "=" ]
    let mutable i = 0
    while i < text.Length do
        let c = text[i]
        if Char.IsWhiteSpace c then
            i <- i + 1
        elif c = '"' then
            let value = StringBuilder()
            i <- i + 1
            while i < text.Length && text[i] <> '"' do
                if text[i] = '\\' && i + 1 < text.Length then
                    value.Append(match text[i + 1] with 'n' -> '\n' | 't' -> '\t' | other -> other) |> ignore
                    i <- i + 2
                else
                    value.Append(text[i]) |> ignore
                    i <- i + 1
            if i >= text.Length then fail "a string does not end"
            tokens.Add(Text(value.ToString()))
            i <- i + 1
        elif Char.IsDigit c || (c = '-' && i + 1 < text.Length && Char.IsDigit text[i + 1]) then
            let start = i
            i <- i + 1
            while i < text.Length && Char.IsDigit text[i] do i <- i + 1
            tokens.Add(Number(Int64.Parse(text.AsSpan(start, i - start))))
        elif Char.IsLetter c || c = '_' then
            let start = i
            while i < text.Length && (Char.IsLetterOrDigit text[i] || text[i] = '_') do i <- i + 1
            tokens.Add(Name(text.Substring(start, i - start)))
        else
            match symbols |> List.tryFind (fun symbol -> String.CompareOrdinal(text, i, symbol, 0, symbol.Length) = 0) with
            | Some symbol ->
                tokens.Add(Symbol symbol)
                i <- i + symbol.Length
            | None -> fail $"unexpected character '{c}' at {i} in: {text}"
    List.ofSeq tokens

let rec private parseValue (tokens: Token list) : TlaValue * Token list =
    match tokens with
    | Number n :: rest -> TInt n, rest
    | Text s :: rest -> TStr s, rest
    | Name "TRUE" :: rest -> TBool true, rest
    | Name "FALSE" :: rest -> TBool false, rest
    | Symbol "<<" :: rest ->
        let items, rest = parseList ">>" rest
        TSeq items, rest
    | Symbol "{" :: rest ->
        let items, rest = parseList "}" rest
        TSet items, rest
    | Symbol "[" :: rest -> parseRecord Map.empty rest
    | Symbol "(" :: rest -> parseFunction [] rest
    | other -> fail $"a value cannot start with {List.truncate 3 other}"

and private parseList (closing: string) (tokens: Token list) : TlaValue list * Token list =
    match tokens with
    | Symbol s :: rest when s = closing -> [], rest
    | _ ->
        let rec loop (acc: TlaValue list) tokens =
            let value, rest = parseValue tokens
            match rest with
            | Symbol "," :: rest -> loop (value :: acc) rest
            | Symbol s :: rest when s = closing -> List.rev (value :: acc), rest
            | other -> fail $"expected , or {closing}, found {List.truncate 3 other}"
        loop [] tokens

and private parseRecord (fields: Map<string, TlaValue>) (tokens: Token list) : TlaValue * Token list =
    match tokens with
    | Name name :: Symbol "|->" :: rest ->
        let value, rest = parseValue rest
        let fields = fields.Add(name, value)
        match rest with
        | Symbol "," :: rest -> parseRecord fields rest
        | Symbol "]" :: rest -> TRecord fields, rest
        | other -> fail $"expected , or ] in a record, found {List.truncate 3 other}"
    | other -> fail $"expected a field name in a record, found {List.truncate 3 other}"

and private parseFunction (pairs: (TlaValue * TlaValue) list) (tokens: Token list) : TlaValue * Token list =
    let key, rest = parseValue tokens
    match rest with
    | Symbol ":>" :: rest ->
        let value, rest = parseValue rest
        let pairs = (key, value) :: pairs
        match rest with
        | Symbol "@@" :: rest -> parseFunction pairs rest
        | Symbol ")" :: rest -> TFun(List.rev pairs), rest
        | other -> fail $"expected @@ or ) in a function, found {List.truncate 3 other}"
    | other -> fail $"expected :> in a function, found {List.truncate 3 other}"

/// One value printed by TLC, e.g. `{<<1, "#a">>, <<2, "#b">>}`.
let parseExpression (text: string) : TlaValue =
    match parseValue (tokenize text) with
    | value, [] -> value
    | _, rest -> fail $"text after a value: {List.truncate 3 rest}"

/// A state as TLC prints it: `/\ x = 1 /\ y = {}`, one conjunct per variable.
let parseState (text: string) : Map<string, TlaValue> =
    let rec loop (acc: Map<string, TlaValue>) tokens =
        match tokens with
        | [] -> acc
        | Symbol "/\\" :: Name variable :: Symbol "=" :: rest ->
            let value, rest = parseValue rest
            loop (acc.Add(variable, value)) rest
        | other -> fail $"expected /\\ variable = value, found {List.truncate 3 other}"
    loop Map.empty (tokenize text)

// ---------------------------------------------------------------------------------------------
// Fixture files.

/// The text of a file, gunzipped when its name ends in .gz.
let readText (path: string) : string =
    if path.EndsWith(".gz", StringComparison.Ordinal) then
        use file = File.OpenRead path
        use gzip = new GZipStream(file, CompressionMode.Decompress)
        use reader = new StreamReader(gzip, Encoding.UTF8)
        reader.ReadToEnd()
    else
        File.ReadAllText path

/// One state of a simulated behaviour: TLC's `_action` field and the variables.
type TraceState =
    { Action: TlaValue
      Variables: Map<string, TlaValue> }

/// Behaviours written one after another as NDJSON, each starting with its Init state.
let readBehaviours (path: string) : TraceState list list =
    let states =
        [ for line in (readText path).Split('\n') do
              if not (String.IsNullOrWhiteSpace line) then
                  match parseJson line with
                  | TRecord fields ->
                      { Action = fields |> Map.tryFind "_action" |> Option.defaultValue (TRecord Map.empty)
                        Variables = fields.Remove "_action" }
                  | other -> fail $"a state must be a JSON object: {print other}" ]
    let isInit (state: TraceState) =
        match state.Action with
        | TRecord fields -> fields.TryFind "name" = Some(TStr "Init")
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

/// TLC's state graph (`-dump dot,actionlabels`): states by node id, the initial states, and
/// every edge with its action label.
type StateGraph =
    { States: Map<string, Map<string, TlaValue>>
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

let readStateGraph (path: string) : StateGraph =
    let states = Collections.Generic.Dictionary<string, Map<string, TlaValue>>()
    let initial = ResizeArray<string>()
    let edges = ResizeArray<string * string * string>()
    for line in (readText path).Split('\n') do
        let line = line.Trim()
        let id = line.Split(' ')[0]
        if line.Length > 0 && (Char.IsDigit line[0] || line[0] = '-') then
            match line.Split(' ') with
            | [||] -> ()
            | words when words.Length > 2 && words[1] = "->" ->
                edges.Add(id, words[2], dotAttribute "label" line |> Option.defaultValue "")
            | _ ->
                match dotAttribute "label" line with
                | Some label ->
                    states[id] <- parseState label
                    if line.Contains("style = filled", StringComparison.Ordinal) then initial.Add id
                | None -> ()
    { States = states |> Seq.map (fun pair -> pair.Key, pair.Value) |> Map.ofSeq
      Initial = Set.ofSeq initial
      Edges = List.ofSeq edges }
