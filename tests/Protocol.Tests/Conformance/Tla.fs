/// TLA+ values as TLC prints them, read from the fixtures under spec/: the state graphs
/// (TLA+ text, one state per line) and the simulated behaviours (NDJSON from the Json module).
module FormalChat.Protocol.Tests.Conformance.Tla

open System
open System.IO
open System.Text.Json

type Value =
    | Int of int
    | Bool of bool
    | Str of string
    /// <<a, b>>; also every JSON array (TLC prints sets and sequences both as arrays, and a
    /// function whose domain is 1..n as a sequence).
    | Seq of Value list
    | SetOf of Value list
    /// [name |-> value]; also every JSON object (a function with an integer domain
    /// prints as an object whose keys are the numbers).
    | Record of Map<string, Value>
    /// (k1 :> v1 @@ k2 :> v2)
    | Function of (Value * Value) list

let rec show (value: Value) : string =
    match value with
    | Int n -> string n
    | Bool b -> if b then "TRUE" else "FALSE"
    | Str s -> "\"" + s + "\""
    | Seq items -> "<<" + String.Join(", ", items |> List.map show) + ">>"
    | SetOf items -> "{" + String.Join(", ", items |> List.map show) + "}"
    | Record fields -> "[" + String.Join(", ", fields |> Map.toList |> List.map (fun (k, v) -> k + " |-> " + show v)) + "]"
    | Function pairs -> "(" + String.Join(" @@ ", pairs |> List.map (fun (k, v) -> show k + " :> " + show v)) + ")"

let asInt (value: Value) : int =
    match value with
    | Int n -> n
    | other -> failwithf "expected an integer, got %s" (show other)

let asBool (value: Value) : bool =
    match value with
    | Bool b -> b
    | other -> failwithf "expected a Boolean, got %s" (show other)

let asString (value: Value) : string =
    match value with
    | Str s -> s
    | other -> failwithf "expected a string, got %s" (show other)

/// The elements of a set (printed as {..} in TLA+ text, as an array in JSON).
let asSet (value: Value) : Value list =
    match value with
    | SetOf items | Seq items -> items
    | other -> failwithf "expected a set, got %s" (show other)

/// A function with integer domain, whichever way TLC printed it.
let asIntFunction (value: Value) : Map<int, Value> =
    match value with
    | Seq items -> items |> List.mapi (fun index item -> index + 1, item) |> Map.ofList
    | Function pairs -> pairs |> List.map (fun (k, v) -> asInt k, v) |> Map.ofList
    | Record fields -> fields |> Map.toList |> List.map (fun (k, v) -> int k, v) |> Map.ofList
    | other -> failwithf "expected a function, got %s" (show other)

let field (name: string) (value: Value) : Value =
    match value with
    | Record fields when fields.ContainsKey name -> fields[name]
    | other -> failwithf "expected a record with field %s, got %s" name (show other)

// ---------------------------------------------------------------------------------------
// TLA+ text, as in TLC's state dumps: "/\ x = <<1, 2>> /\ y = {[a |-> "b"]}".

type private Parser(text: string) =
    let mutable position = 0

    member _.Position = position

    member this.SkipSpace() =
        while position < text.Length && Char.IsWhiteSpace text[position] do
            position <- position + 1

    member this.Peek(token: string) =
        this.SkipSpace()
        String.CompareOrdinal(text, position, token, 0, token.Length) = 0

    member this.Expect(token: string) =
        if not (this.Peek token) then
            failwithf "expected '%s' at %d in: %s" token position text
        position <- position + token.Length

    member this.TryTake(token: string) =
        if this.Peek token then
            position <- position + token.Length
            true
        else
            false

    member this.Items(closing: string) : Value list =
        if this.TryTake closing then
            []
        else
            let items = ResizeArray [ this.Value() ]
            while this.TryTake "," do
                items.Add(this.Value())
            this.Expect closing
            List.ofSeq items

    member this.Identifier() : string =
        this.SkipSpace()
        let start = position
        while position < text.Length && (Char.IsLetterOrDigit text[position] || text[position] = '_') do
            position <- position + 1
        text.Substring(start, position - start)

    member this.Value() : Value =
        this.SkipSpace()
        if this.TryTake "<<" then
            Seq(this.Items ">>")
        elif this.TryTake "{" then
            SetOf(this.Items "}")
        elif this.TryTake "[" then
            let fields = ResizeArray()
            if not (this.TryTake "]") then
                let pair () =
                    let name = this.Identifier()
                    this.Expect "|->"
                    fields.Add(name, this.Value())
                pair ()
                while this.TryTake "," do
                    pair ()
                this.Expect "]"
            Record(Map.ofSeq fields)
        elif this.TryTake "(" then
            let pairs = ResizeArray()
            let pair () =
                let key = this.Value()
                this.Expect ":>"
                pairs.Add(key, this.Value())
            pair ()
            while this.TryTake "@@" do
                pair ()
            this.Expect ")"
            Function(List.ofSeq pairs)
        elif this.TryTake "\"" then
            let start = position
            while text[position] <> '"' do
                position <- position + 1
            let s = text.Substring(start, position - start)
            position <- position + 1
            Str s
        elif this.TryTake "TRUE" then
            Bool true
        elif this.TryTake "FALSE" then
            Bool false
        else
            let start = position
            if text[position] = '-' then position <- position + 1
            while position < text.Length && Char.IsDigit text[position] do
                position <- position + 1
            if position = start then failwithf "unexpected text at %d in: %s" start text
            Int(int (text.Substring(start, position - start)))

/// One TLA+ value in TLC's notation.
let parseValue (text: string) : Value =
    let parser = Parser text
    let value = parser.Value()
    parser.SkipSpace()
    if parser.Position <> text.Length then failwithf "trailing text after value: %s" text
    value

/// A state as TLC prints it: "/\ var = value /\ var = value ..." -> variable -> value.
let parseState (text: string) : Map<string, Value> =
    text.Split("/\\", StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
    |> Array.map (fun assignment ->
        let equals = assignment.IndexOf " = "
        assignment.Substring(0, equals).Trim(), parseValue (assignment.Substring(equals + 3)))
    |> Map.ofArray

// ---------------------------------------------------------------------------------------
// JSON, as written by the Json module's ndJsonSerialize.

let rec ofJson (element: JsonElement) : Value =
    match element.ValueKind with
    | JsonValueKind.Number -> Int(element.GetInt32())
    | JsonValueKind.True -> Bool true
    | JsonValueKind.False -> Bool false
    | JsonValueKind.String -> Str(element.GetString() |> Option.ofObj |> Option.defaultValue "")
    | JsonValueKind.Array -> Seq [ for item in element.EnumerateArray() -> ofJson item ]
    | JsonValueKind.Object -> Record(Map.ofSeq [ for property in element.EnumerateObject() -> property.Name, ofJson property.Value ])
    | other -> failwithf "unexpected JSON value kind %A" other

/// One step of a behaviour: the action TLC took to reach the state (Init for the first),
/// the action's parameters by name, and the state.
type TraceStep =
    { Action: string
      Parameters: Map<string, Value>
      State: Map<string, Value> }
