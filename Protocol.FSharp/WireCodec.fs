/// The pieces Wire.fs builds its codec tables from: a field is written and read by one value, so
/// a frame's layout is stated once and both directions follow it. Reading is strict and says
/// why a frame is refused (FrameInvalid, turned into a DecodeError by Wire); writing goes
/// straight to a Utf8JsonWriter, with every property name encoded once, when the table is built.
module internal FormalChat.Protocol.WireCodec

open System
open System.Text.Json
open Microsoft.FSharp.Reflection

exception FrameInvalid of string

let fail reason = raise (FrameInvalid reason)

/// A property name: as text for the reasons a frame is refused, and encoded for the writer.
[<NoComparison; NoEquality>]
type Name = { Text: string; Encoded: JsonEncodedText }

let name (text: string) : Name = { Text = text; Encoded = JsonEncodedText.Encode text }

// ---------------------------------------------------------------------------------------------
// Reading a field of an object, by the rules of docs/PROTOCOL.md.

/// A field that is present and not null.
let tryField (frame: JsonElement) (name: Name) : JsonElement voption =
    match frame.TryGetProperty name.Encoded.EncodedUtf8Bytes with
    | true, value when value.ValueKind <> JsonValueKind.Null -> ValueSome value
    | _ -> ValueNone

let required (frame: JsonElement) (name: Name) : JsonElement =
    match frame.TryGetProperty name.Encoded.EncodedUtf8Bytes with
    | false, _ -> fail $"missing field '{name.Text}'"
    | true, value when value.ValueKind = JsonValueKind.Null -> fail $"field '{name.Text}' is null"
    | true, value -> value

let asStringNamed (what: string) (token: JsonElement) : string =
    if token.ValueKind = JsonValueKind.String then token.GetString() |> Option.ofObj |> Option.defaultValue ""
    else fail what

let integer (name: string) (token: JsonElement) : int64 =
    if token.ValueKind <> JsonValueKind.Number then fail $"field '{name}' must be an integer"
    match token.TryGetInt64() with
    | true, number -> number
    | false, _ ->
        // A fraction or an exponent is not an integer; digits alone that do not fit are out of range.
        if token.GetRawText() |> Seq.exists (fun c -> c = '.' || c = 'e' || c = 'E') then fail $"field '{name}' must be an integer"
        else fail $"field '{name}' is out of range"

let readString (frame: JsonElement) (name: Name) : string =
    asStringNamed $"field '{name.Text}' must be a string" (required frame name)

let readLong (frame: JsonElement) (name: Name) : int64 = integer name.Text (required frame name)

let readInt (frame: JsonElement) (name: Name) : int =
    let value = readLong frame name
    if value < int64 Int32.MinValue || value > int64 Int32.MaxValue then fail $"field '{name.Text}' is out of range"
    int value

/// A node id between nodes: configured ids are positive ints (0 means "none" in the spec).
let readNodeId (frame: JsonElement) (name: Name) : NodeId =
    let value = readLong frame name
    if value < 1L || value > int64 Int32.MaxValue then fail $"field '{name.Text}' is not a node id: {value}"
    int value

let readBounded (bound: int64) (frame: JsonElement) (name: Name) : int64 =
    let value = readLong frame name
    if value < 0L || value > bound then fail $"field '{name.Text}' is out of range: {value} (0 to {bound})"
    value

let readPositive (frame: JsonElement) (name: Name) : int64 =
    let value = readLong frame name
    if value < 1L then fail $"field '{name.Text}' must be a positive integer, or left out: {value}"
    value

let readBool (frame: JsonElement) (name: Name) : bool =
    match (required frame name).ValueKind with
    | JsonValueKind.True -> true
    | JsonValueKind.False -> false
    | _ -> fail $"field '{name.Text}' must be true or false"

let readObject (frame: JsonElement) (name: Name) : JsonElement =
    match required frame name with
    | inner when inner.ValueKind = JsonValueKind.Object -> inner
    | _ -> fail $"field '{name.Text}' must be an object"

let readArray (frame: JsonElement) (name: Name) : JsonElement list =
    match required frame name with
    | items when items.ValueKind = JsonValueKind.Array -> [ for item in items.EnumerateArray() -> item ]
    | _ -> fail $"field '{name.Text}' must be an array"

// ---------------------------------------------------------------------------------------------
// Fields: some properties of one object, written and read together. A named value, a record, a
// case's payload and a nested object are all Fields; fieldsN puts several side by side as a
// struct tuple. Abstract classes rather than records of functions: this is the hot path, and a
// virtual call is cheaper than F#'s curried closure calls.

[<AbstractClass>]
type Fields<'T>() =
    abstract Write: json: Utf8JsonWriter * item: 'T -> unit
    abstract Read: frame: JsonElement -> 'T

/// A kind of value: given a property name, the one field that holds it. Each kind bakes the
/// name into its field, so writing a scalar is one virtual call to the JSON writer.
type Value<'T> = Name -> Fields<'T>

let field (text: string) (value: Value<'T>) : Fields<'T> = value (name text)

/// A value with its writer and its reader side by side.
let value (writeAs: Utf8JsonWriter -> Name -> 'T -> unit) (readFrom: JsonElement -> Name -> 'T) : Value<'T> =
    fun name ->
        { new Fields<'T>() with
            member _.Write(json, item) = writeAs json name item
            member _.Read frame = readFrom frame name }

let text : Value<string> =
    fun name ->
        { new Fields<string>() with
            member _.Write(json, item) = json.WriteString(name.Encoded, item)
            member _.Read frame = readString frame name }

/// An int64 read by `read` (which checks its range).
let private int64Read (read: JsonElement -> Name -> int64) : Value<int64> =
    fun name ->
        { new Fields<int64>() with
            member _.Write(json, item) = json.WriteNumber(name.Encoded, item)
            member _.Read frame = read frame name }

let private int32Read (read: JsonElement -> Name -> int) : Value<int> =
    fun name ->
        { new Fields<int>() with
            member _.Write(json, item) = json.WriteNumber(name.Encoded, item)
            member _.Read frame = read frame name }

let int64Value : Value<int64> = int64Read readLong
let int32Value : Value<int> = int32Read readInt
let nodeId : Value<NodeId> = int32Read readNodeId

/// A number of a peer frame that must lie in 0..bound (docs/PROTOCOL.md, "Ranges").
let bounded (bound: int64) : Value<int64> = int64Read (readBounded bound)

/// A number of a client frame that must be at least 1 (a `say`'s id: docs/PROTOCOL.md).
let positive : Value<int64> = int64Read readPositive

/// An int that must lie in 0..bound.
let boundedInt32 (bound: int) : Value<int> = int32Read (fun frame name -> int (readBounded (int64 bound) frame name))

let flag : Value<bool> = value (fun json name item -> json.WriteBoolean(name.Encoded, item)) readBool

/// A value carried as a string: `parse` says what it is, or why not.
let textAs (format: 'T -> string) (parse: Name -> string -> 'T) : Value<'T> =
    value (fun json name item -> json.WriteString(name.Encoded, format item)) (fun frame name -> parse name (readString frame name))

/// Present and not null: Some; missing or null: None.
let private readOptional (inner: Fields<'T>) (frame: JsonElement) (name: Name) : 'T option =
    match tryField frame name with
    | ValueNone -> None
    | ValueSome _ -> Some(inner.Read frame)

/// An optional value written as null when there is none.
let nullable (inner: Value<'T>) : Value<'T option> =
    fun name ->
        let inner = inner name
        let writeAs (json: Utf8JsonWriter) (name: Name) (item: 'T option) =
            match item with
            | Some item -> inner.Write(json, item)
            | None -> json.WriteNull name.Encoded
        value writeAs (readOptional inner) name

/// An optional value left out when there is none.
let omittedWhenNone (inner: Value<'T>) : Value<'T option> =
    fun name ->
        let inner = inner name
        value (fun json _ item -> item |> Option.iter (fun item -> inner.Write(json, item))) (readOptional inner) name

/// Always written; read as `fallback` when missing or null.
let orDefault (fallback: 'T) (inner: Value<'T>) : Value<'T> =
    fun name ->
        let inner = inner name
        value (fun json _ item -> inner.Write(json, item)) (fun frame name -> readOptional inner frame name |> Option.defaultValue fallback) name

/// Left out when it is `fallback`, and read as `fallback` when missing or null.
let omittedAt (fallback: 'T) (inner: Value<'T>) : Value<'T> when 'T: equality =
    fun name ->
        let inner = inner name
        let readFrom frame name = readOptional inner frame name |> Option.defaultValue fallback
        value (fun json _ item -> if item <> fallback then inner.Write(json, item)) readFrom name

/// The same properties, for a type made of them and taken apart into them.
let mapFields (make: 'A -> 'B) (parts: 'B -> 'A) (fields: Fields<'A>) : Fields<'B> =
    { new Fields<'B>() with
        member _.Write(json, item) = fields.Write(json, parts item)
        member _.Read frame = make (fields.Read frame) }

/// No properties: a case without a payload.
[<Struct>]
type NoFields = NoFields

let private noFields : Fields<NoFields> =
    { new Fields<NoFields>() with
        member _.Write(_, _) = ()
        member _.Read _ = NoFields }

// Fields are read in the order they are written, so of two bad fields the first one is named.
let fields2 (a: Fields<'A>) (b: Fields<'B>) : Fields<struct ('A * 'B)> =
    { new Fields<struct ('A * 'B)>() with
        member _.Write(json, struct (x, y)) =
            a.Write(json, x)
            b.Write(json, y)
        member _.Read frame =
            let x = a.Read frame
            struct (x, b.Read frame) }

let fields3 (a: Fields<'A>) (b: Fields<'B>) (c: Fields<'C>) : Fields<struct ('A * 'B * 'C)> =
    { new Fields<struct ('A * 'B * 'C)>() with
        member _.Write(json, struct (x, y, z)) =
            a.Write(json, x)
            b.Write(json, y)
            c.Write(json, z)
        member _.Read frame =
            let x = a.Read frame
            let y = b.Read frame
            struct (x, y, c.Read frame) }

let fields4 (a: Fields<'A>) (b: Fields<'B>) (c: Fields<'C>) (d: Fields<'D>) : Fields<struct ('A * 'B * 'C * 'D)> =
    { new Fields<struct ('A * 'B * 'C * 'D)>() with
        member _.Write(json, struct (x, y, z, w)) =
            a.Write(json, x)
            b.Write(json, y)
            c.Write(json, z)
            d.Write(json, w)
        member _.Read frame =
            let x = a.Read frame
            let y = b.Read frame
            let z = c.Read frame
            struct (x, y, z, d.Read frame) }

let fields5 (a: Fields<'A>) (b: Fields<'B>) (c: Fields<'C>) (d: Fields<'D>) (e: Fields<'E>) : Fields<struct ('A * 'B * 'C * 'D * 'E)> =
    { new Fields<struct ('A * 'B * 'C * 'D * 'E)>() with
        member _.Write(json, struct (x, y, z, w, v)) =
            a.Write(json, x)
            b.Write(json, y)
            c.Write(json, z)
            d.Write(json, w)
            e.Write(json, v)
        member _.Read frame =
            let x = a.Read frame
            let y = b.Read frame
            let z = c.Read frame
            let w = d.Read frame
            struct (x, y, z, w, e.Read frame) }

let fields6 (a: Fields<'A>) (b: Fields<'B>) (c: Fields<'C>) (d: Fields<'D>) (e: Fields<'E>) (f: Fields<'F>) : Fields<struct ('A * 'B * 'C * 'D * 'E * 'F)> =
    { new Fields<struct ('A * 'B * 'C * 'D * 'E * 'F)>() with
        member _.Write(json, struct (x, y, z, w, v, u)) =
            a.Write(json, x)
            b.Write(json, y)
            c.Write(json, z)
            d.Write(json, w)
            e.Write(json, v)
            f.Write(json, u)
        member _.Read frame =
            let x = a.Read frame
            let y = b.Read frame
            let z = c.Read frame
            let w = d.Read frame
            let v = e.Read frame
            struct (x, y, z, w, v, f.Read frame) }

// ---------------------------------------------------------------------------------------------
// Nested objects and arrays.

/// An item of an array, written and read on its own (not under a name).
[<NoComparison; NoEquality>]
type Item<'T> =
    { WriteItem: Utf8JsonWriter -> 'T -> unit
      ReadItem: JsonElement -> 'T }

let private writeObject (fields: Fields<'T>) (json: Utf8JsonWriter) (item: 'T) =
    json.WriteStartObject()
    fields.Write(json, item)
    json.WriteEndObject()

let objectItem (fields: Fields<'T>) : Item<'T> =
    { WriteItem = writeObject fields
      ReadItem = fun token -> if token.ValueKind = JsonValueKind.Object then fields.Read token else fail "an array item must be an object" }

let stringItem : Item<string> =
    { WriteItem = (fun json item -> json.WriteStringValue item)
      ReadItem = asStringNamed "an array item must be a string" }

/// An object nested under a name.
let objectOf (fields: Fields<'T>) : Value<'T> =
    value (fun json name item -> json.WritePropertyName name.Encoded; writeObject fields json item) (fun frame name -> fields.Read(readObject frame name))

let listOf (item: Item<'T>) : Value<'T list> =
    value
        (fun json name items ->
            json.WritePropertyName name.Encoded
            json.WriteStartArray()
            for each in items do item.WriteItem json each
            json.WriteEndArray())
        (fun frame name -> readArray frame name |> List.map item.ReadItem)

// ---------------------------------------------------------------------------------------------
// A union's table: one case per union case, each its "type" tag and its fields.

[<AbstractClass>]
type Case<'Union>(tag: string) =
    member _.Tag = tag
    /// Writes the "type" and the fields; false when the value is another case.
    abstract TryWrite: json: Utf8JsonWriter * value: 'Union -> bool
    abstract Read: frame: JsonElement -> 'Union

let private typeName = JsonEncodedText.Encode "type"

/// One case: its tag, its fields, how the case is made of them, and taken apart into them.
let case (tag: string) (fields: Fields<'T>) (make: 'T -> 'Union) (parts: 'Union -> 'T voption) : Case<'Union> =
    let encodedTag = JsonEncodedText.Encode tag
    { new Case<'Union>(tag) with
        member _.TryWrite(json, value) =
            match parts value with
            | ValueSome payload ->
                json.WriteString(typeName, encodedTag)
                fields.Write(json, payload)
                true
            | ValueNone -> false
        member _.Read frame = make (fields.Read frame) }

/// A case without fields: F# keeps one instance of it, so it is found by reference.
let constant (tag: string) (value: 'Union) : Case<'Union> =
    case tag noFields (fun NoFields -> value) (fun other -> if LanguagePrimitives.PhysicalEquality other value then ValueSome NoFields else ValueNone)

/// The compiled union's own Tag (its case's position in the declaration), read without boxing.
let private tagReader<'Union> () : Func<'Union, int> =
    let getter =
        match FSharpValue.PreComputeUnionTagMemberInfo(typeof<'Union>, true) with
        | :? Reflection.PropertyInfo as tag -> tag.GetGetMethod true
        | _ -> null
    match getter with
    | null ->
        let read = FSharpValue.PreComputeUnionTagReader(typeof<'Union>, true)
        Func<'Union, int>(fun value -> read (box value))
    | getter -> getter.CreateDelegate<Func<'Union, int>>()

[<NoComparison; NoEquality>]
type Table<'Union> =
    { ByPosition: Case<'Union> array
      TagOf: Func<'Union, int> }

/// The cases in the union's declaration order, so a value finds its case by position.
let table (cases: Case<'Union> list) : Table<'Union> =
    let declared = FSharpType.GetUnionCases(typeof<'Union>, true)
    if declared.Length <> cases.Length then
        invalidOp $"the wire table of {typeof<'Union>.Name} has {cases.Length} cases for {declared.Length}"
    let tags = cases |> List.map _.Tag
    if List.distinct tags <> tags then invalidOp $"the wire table of {typeof<'Union>.Name} repeats a tag"
    { ByPosition = Array.ofList cases; TagOf = tagReader<'Union> () }

/// A table of one case for a type that is not a union (the log's records).
let single (case: Case<'T>) : Table<'T> =
    { ByPosition = [| case |]; TagOf = Func<'T, int>(fun _ -> 0) }

let write (table: Table<'Union>) (json: Utf8JsonWriter) (value: 'Union) =
    let case = table.ByPosition.[table.TagOf.Invoke value]
    // Only a table listed out of the union's order gets here: the round-trip tests catch it.
    if not (case.TryWrite(json, value)) then invalidOp $"the wire table of {typeof<'Union>.Name} is not in declaration order at '{case.Tag}'"

/// A scan, not a dictionary: tables are short, and comparing a few short strings (length first)
/// costs less than hashing one.
let read (table: Table<'Union>) (tag: string) (frame: JsonElement) : 'Union =
    let cases = table.ByPosition
    let mutable index = 0
    while index < cases.Length && not (String.Equals(cases.[index].Tag, tag)) do
        index <- index + 1
    if index = cases.Length then fail $"unknown message type '{tag}'"
    cases.[index].Read frame
