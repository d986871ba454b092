/// The pieces Wire.fs builds its codec tables from: a field is written and read by one value, so
/// a frame's layout is stated once and both directions follow it. Reading is strict and says
/// why a frame is refused (FrameInvalid, turned into a DecodeError by Wire); writing goes
/// straight to a Utf8JsonWriter, with every property name encoded once, when the table is built.
module internal FormalChat.Protocol.WireCodec

open System
open System.Collections.Generic
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
// Values: how one kind of value is written under a name and read back from an object.

[<NoComparison; NoEquality>]
type Value<'T> =
    { WriteAs: Utf8JsonWriter -> Name -> 'T -> unit
      ReadFrom: JsonElement -> Name -> 'T }

let text : Value<string> = { WriteAs = (fun json name value -> json.WriteString(name.Encoded, value)); ReadFrom = readString }
let int64Value : Value<int64> = { WriteAs = (fun json name value -> json.WriteNumber(name.Encoded, value)); ReadFrom = readLong }
let int32Value : Value<int> = { WriteAs = (fun json name value -> json.WriteNumber(name.Encoded, value)); ReadFrom = readInt }
let flag : Value<bool> = { WriteAs = (fun json name value -> json.WriteBoolean(name.Encoded, value)); ReadFrom = readBool }
let nodeId : Value<NodeId> = { int32Value with ReadFrom = readNodeId }

/// A number of a peer frame that must lie in 0..bound (docs/PROTOCOL.md, "Ranges").
let bounded (bound: int64) : Value<int64> = { int64Value with ReadFrom = readBounded bound }

/// A value carried as a string: `parse` says what it is, or why not.
let textAs (format: 'T -> string) (parse: Name -> string -> 'T) : Value<'T> =
    { WriteAs = (fun json name value -> json.WriteString(name.Encoded, format value))
      ReadFrom = (fun frame name -> parse name (readString frame name)) }

/// Present and not null: Some; missing or null: None.
let private readOptional (value: Value<'T>) (frame: JsonElement) (name: Name) : 'T option =
    match tryField frame name with
    | ValueNone -> None
    | ValueSome _ -> Some(value.ReadFrom frame name)

/// An optional value written as null when there is none.
let nullable (value: Value<'T>) : Value<'T option> =
    { WriteAs =
        (fun json name item ->
            match item with
            | Some item -> value.WriteAs json name item
            | None -> json.WriteNull name.Encoded)
      ReadFrom = readOptional value }

/// An optional value left out when there is none.
let omittedWhenNone (value: Value<'T>) : Value<'T option> =
    { WriteAs = (fun json name item -> item |> Option.iter (value.WriteAs json name)); ReadFrom = readOptional value }

/// Always written; read as `fallback` when missing or null.
let orDefault (fallback: 'T) (value: Value<'T>) : Value<'T> =
    { value with ReadFrom = fun frame name -> readOptional value frame name |> Option.defaultValue fallback }

/// Left out when it is `fallback`, and read as `fallback` when missing or null.
let omittedAt (fallback: 'T) (value: Value<'T>) : Value<'T> when 'T: equality =
    { orDefault fallback value with WriteAs = fun json name item -> if item <> fallback then value.WriteAs json name item }

// ---------------------------------------------------------------------------------------------
// Fields: some properties of one object, written and read together. A record, a case's payload
// and a nested object are all Fields; fieldsN puts several side by side as a struct tuple.

[<NoComparison; NoEquality>]
type Fields<'T> =
    { Write: Utf8JsonWriter -> 'T -> unit
      Read: JsonElement -> 'T }

let field (text: string) (value: Value<'T>) : Fields<'T> =
    let name = name text
    { Write = (fun json item -> value.WriteAs json name item); Read = fun frame -> value.ReadFrom frame name }

/// The same properties, for a type made of them and taken apart into them.
let mapFields (make: 'A -> 'B) (parts: 'B -> 'A) (fields: Fields<'A>) : Fields<'B> =
    { Write = (fun json item -> fields.Write json (parts item)); Read = fun frame -> make (fields.Read frame) }

let noFields : Fields<unit> = { Write = (fun _ () -> ()); Read = fun _ -> () }

// Fields are read in the order they are written, so of two bad fields the first one is named.
let fields2 (a: Fields<'A>) (b: Fields<'B>) : Fields<struct ('A * 'B)> =
    { Write = (fun json (struct (x, y)) -> a.Write json x; b.Write json y)
      Read = fun frame -> let x = a.Read frame in struct (x, b.Read frame) }

let fields3 (a: Fields<'A>) (b: Fields<'B>) (c: Fields<'C>) : Fields<struct ('A * 'B * 'C)> =
    { Write = (fun json (struct (x, y, z)) -> a.Write json x; b.Write json y; c.Write json z)
      Read =
        fun frame ->
            let x = a.Read frame
            let y = b.Read frame
            struct (x, y, c.Read frame) }

let fields4 (a: Fields<'A>) (b: Fields<'B>) (c: Fields<'C>) (d: Fields<'D>) : Fields<struct ('A * 'B * 'C * 'D)> =
    { Write = (fun json (struct (x, y, z, w)) -> a.Write json x; b.Write json y; c.Write json z; d.Write json w)
      Read =
        fun frame ->
            let x = a.Read frame
            let y = b.Read frame
            let z = c.Read frame
            struct (x, y, z, d.Read frame) }

let fields5 (a: Fields<'A>) (b: Fields<'B>) (c: Fields<'C>) (d: Fields<'D>) (e: Fields<'E>) : Fields<struct ('A * 'B * 'C * 'D * 'E)> =
    { Write = (fun json (struct (x, y, z, w, v)) -> a.Write json x; b.Write json y; c.Write json z; d.Write json w; e.Write json v)
      Read =
        fun frame ->
            let x = a.Read frame
            let y = b.Read frame
            let z = c.Read frame
            let w = d.Read frame
            struct (x, y, z, w, e.Read frame) }

let fields6 (a: Fields<'A>) (b: Fields<'B>) (c: Fields<'C>) (d: Fields<'D>) (e: Fields<'E>) (f: Fields<'F>) : Fields<struct ('A * 'B * 'C * 'D * 'E * 'F)> =
    { Write = (fun json (struct (x, y, z, w, v, u)) -> a.Write json x; b.Write json y; c.Write json z; d.Write json w; e.Write json v; f.Write json u)
      Read =
        fun frame ->
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
    fields.Write json item
    json.WriteEndObject()

let objectItem (fields: Fields<'T>) : Item<'T> =
    { WriteItem = writeObject fields
      ReadItem = fun token -> if token.ValueKind = JsonValueKind.Object then fields.Read token else fail "an array item must be an object" }

let stringItem : Item<string> =
    { WriteItem = (fun json item -> json.WriteStringValue item)
      ReadItem = asStringNamed "an array item must be a string" }

/// An object nested under a name.
let objectOf (fields: Fields<'T>) : Value<'T> =
    { WriteAs = (fun json name item -> json.WritePropertyName name.Encoded; writeObject fields json item)
      ReadFrom = fun frame name -> fields.Read(readObject frame name) }

let listOf (item: Item<'T>) : Value<'T list> =
    { WriteAs =
        (fun json name items ->
            json.WritePropertyName name.Encoded
            json.WriteStartArray()
            for each in items do item.WriteItem json each
            json.WriteEndArray())
      ReadFrom = fun frame name -> readArray frame name |> List.map item.ReadItem }

// ---------------------------------------------------------------------------------------------
// A union's table: one case per union case, each its "type" tag and its fields.

[<NoComparison; NoEquality>]
type Case<'Union> =
    { Tag: string
      /// Writes the "type" and the fields; false when the value is another case.
      TryWrite: Utf8JsonWriter -> 'Union -> bool
      Read: JsonElement -> 'Union }

let private typeName = JsonEncodedText.Encode "type"

/// One case: its tag, its fields, how the case is made of them, and taken apart into them.
let case (tag: string) (fields: Fields<'T>) (make: 'T -> 'Union) (parts: 'Union -> 'T voption) : Case<'Union> =
    let encodedTag = JsonEncodedText.Encode tag
    { Tag = tag
      TryWrite =
        fun json value ->
            match parts value with
            | ValueSome payload ->
                json.WriteString(typeName, encodedTag)
                fields.Write json payload
                true
            | ValueNone -> false
      Read = fields.Read >> make }

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
      ByTag: Dictionary<string, Case<'Union>>
      TagOf: Func<'Union, int> }

/// The cases in the union's declaration order, so a value finds its case by position.
let table (cases: Case<'Union> list) : Table<'Union> =
    let declared = FSharpType.GetUnionCases(typeof<'Union>, true)
    if declared.Length <> cases.Length then
        invalidOp $"the wire table of {typeof<'Union>.Name} has {cases.Length} cases for {declared.Length}"
    { ByPosition = Array.ofList cases
      ByTag = Dictionary(cases |> List.map (fun case -> KeyValuePair(case.Tag, case)), StringComparer.Ordinal)
      TagOf = tagReader<'Union> () }

let write (table: Table<'Union>) (json: Utf8JsonWriter) (value: 'Union) =
    let case = table.ByPosition.[table.TagOf.Invoke value]
    // Only a table listed out of the union's order gets here: the round-trip tests catch it.
    if not (case.TryWrite json value) then invalidOp $"the wire table of {typeof<'Union>.Name} is not in declaration order at '{case.Tag}'"

let read (table: Table<'Union>) (tag: string) (frame: JsonElement) : 'Union =
    match table.ByTag.TryGetValue tag with
    | true, case -> case.Read frame
    | false, _ -> fail $"unknown message type '{tag}'"
