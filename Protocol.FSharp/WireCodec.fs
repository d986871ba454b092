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

// The ranges of numbers, checked the same way whichever reader found the number.

let checkInt (name: Name) (value: int64) : int =
    if value < int64 Int32.MinValue || value > int64 Int32.MaxValue then fail $"field '{name.Text}' is out of range"
    int value

/// A node id between nodes: configured ids are positive ints (0 means "none" in the spec).
let checkNodeId (name: Name) (value: int64) : NodeId =
    if value < 1L || value > int64 Int32.MaxValue then fail $"field '{name.Text}' is not a node id: {value}"
    int value

let checkBounded (bound: int64) (name: Name) (value: int64) : int64 =
    if value < 0L || value > bound then fail $"field '{name.Text}' is out of range: {value} (0 to {bound})"
    value

let checkPositive (name: Name) (value: int64) : int64 =
    if value < 1L then fail $"field '{name.Text}' must be a positive integer, or left out: {value}"
    value

let readInt (frame: JsonElement) (name: Name) : int = checkInt name (readLong frame name)

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
// Reading in order: the fast path for a frame laid out as this codec writes it. A Utf8JsonReader
// goes through the frame once, taking each property where the writer put it, with no document
// and no lookups. A frame laid out any other way (fields in another order, a field more, a null,
// a number out of range) gets ValueNone here and is read again by the document path above, which
// accepts what it accepts and names the fault; so both paths give the same answer for every frame.
// The reader only goes forward and never looks ahead (looking ahead takes a copy of the reader, a
// large struct, per field): a field starts on the token after the one before it, its own name or
// the object's end, and leaves the reader on the token after its value.

/// Whether the property name or string the reader stands on is `utf8`. The reader is made over one
/// span, so the text is its ValueSpan, compared as it is unless the JSON escaped it.
let textIs (reader: byref<Utf8JsonReader>, utf8: ReadOnlySpan<byte>) : bool =
    if reader.ValueIsEscaped then reader.ValueTextEquals utf8 else reader.ValueSpan.SequenceEqual utf8

/// Whether the reader stands on the property `name`.
let atName (reader: byref<Utf8JsonReader>, name: Name) : bool =
    reader.TokenType = JsonTokenType.PropertyName && textIs (&reader, name.Encoded.EncodedUtf8Bytes)

/// The number the reader stands on, when it is an int64: parsed from the frame as TryGetInt64
/// parses it (all its digits, or not an int64), one call closer.
let numberValue (reader: byref<Utf8JsonReader>) : int64 voption =
    if reader.TokenType <> JsonTokenType.Number then ValueNone
    else
        let digits = reader.ValueSpan
        let mutable number = 0L
        let mutable consumed = 0
        if Buffers.Text.Utf8Parser.TryParse(digits, &number, &consumed) && consumed = digits.Length then ValueSome number
        else ValueNone

/// The string the reader stands on ("" for none, as asStringNamed reads it). Text without escapes
/// is transcoded straight from the frame, which Wire checked whole as UTF-8 before reading.
let stringOf (reader: byref<Utf8JsonReader>) : string =
    if not reader.ValueIsEscaped then Text.Encoding.UTF8.GetString reader.ValueSpan
    else
        match reader.GetString() with
        | null -> ""
        | text -> text

/// The value the reader stands on, when it is a string.
let stringValue (reader: byref<Utf8JsonReader>) : string voption =
    if reader.TokenType = JsonTokenType.String then ValueSome(stringOf &reader) else ValueNone

// ---------------------------------------------------------------------------------------------
// Fields: some properties of one object, written and read together. A named value, a record, a
// case's payload and a nested object are all Fields; fieldsN puts several side by side as a
// struct tuple. Abstract classes rather than records of functions: this is the hot path, and a
// virtual call is cheaper than F#'s curried closure calls. For the same reason the closures a
// kind of value is given are adapted once (OptimizedClosures) and called with all their arguments,
// and code shared by every 'T is a member rather than a generic function (which code compiled
// once for all reference types would look up on every call).

[<AbstractClass>]
type Fields<'T>() =
    abstract Write: json: Utf8JsonWriter * item: 'T -> unit
    abstract Read: frame: JsonElement -> 'T
    /// The fields read from the reader, in the order Write puts them; ValueNone when the frame is
    /// laid out otherwise (see "Reading in order" above). The reader stands on the first one's name
    /// and is left on the token after the last one's value.
    abstract ReadInOrder: reader: byref<Utf8JsonReader> -> 'T voption

    /// The fields as an object of their own.
    member this.WriteObject(json: Utf8JsonWriter, item: 'T) =
        json.WriteStartObject()
        this.Write(json, item)
        json.WriteEndObject()

    /// In order, the reader standing on the object's StartObject; it is left on its EndObject.
    member this.ReadObjectInOrder(reader: byref<Utf8JsonReader>) : 'T voption =
        if reader.TokenType <> JsonTokenType.StartObject || not (reader.Read()) then ValueNone
        else
            match this.ReadInOrder &reader with
            | ValueSome item when reader.TokenType = JsonTokenType.EndObject -> ValueSome item
            | _ -> ValueNone

/// The field of one property, `name`.
[<AbstractClass>]
type Property<'T>(name: Name) =
    inherit Fields<'T>()
    /// The value the reader stands on, its name read; the reader is left on the value's last token.
    abstract ReadValue: reader: byref<Utf8JsonReader> -> 'T voption

    /// The reader standing on this property's name: its value, and the reader moved past it.
    member this.ReadNamed(reader: byref<Utf8JsonReader>) : 'T voption =
        if not (reader.Read()) then ValueNone
        else
            match this.ReadValue &reader with
            | ValueSome item when reader.Read() -> ValueSome item
            | _ -> ValueNone

    override this.ReadInOrder reader = if atName (&reader, name) then this.ReadNamed &reader else ValueNone

/// A kind of value: given a property name, the one field that holds it. Each kind bakes the
/// name into its field, so writing a scalar is one virtual call to the JSON writer.
type Value<'T> = Name -> Property<'T>

let field (text: string) (value: Value<'T>) : Fields<'T> = value (name text)

/// A value with its writer and its reader side by side; it is not read in order (a frame that
/// holds it is read by the document path).
let value (writeAs: Utf8JsonWriter -> Name -> 'T -> unit) (readFrom: JsonElement -> Name -> 'T) : Value<'T> =
    fun name ->
        { new Property<'T>(name) with
            member _.Write(json, item) = writeAs json name item
            member _.Read frame = readFrom frame name
            member _.ReadValue _ = ValueNone }

let text : Value<string> =
    fun name ->
        { new Property<string>(name) with
            member _.Write(json, item) = json.WriteString(name.Encoded, item)
            member _.Read frame = readString frame name
            member _.ReadValue reader = stringValue &reader }

/// A number written by `write` and read as an int64 that `check` takes (in range) or refuses.
let private number (write: Utf8JsonWriter -> JsonEncodedText -> 'T -> unit) (check: Name -> int64 -> 'T) : Value<'T> =
    let write = OptimizedClosures.FSharpFunc<_, _, _, _>.Adapt write
    let check = OptimizedClosures.FSharpFunc<_, _, _>.Adapt check
    fun name ->
        { new Property<'T>(name) with
            member _.Write(json, item) = write.Invoke(json, name.Encoded, item)
            member _.Read frame = check.Invoke(name, readLong frame name)
            member _.ReadValue reader =
                match numberValue &reader with
                | ValueSome number -> ValueSome(check.Invoke(name, number))
                | ValueNone -> ValueNone }

let private int64Number (check: Name -> int64 -> int64) : Value<int64> =
    number (fun json name (item: int64) -> json.WriteNumber(name, item)) check

let private int32Number (check: Name -> int64 -> int) : Value<int> =
    number (fun json name (item: int) -> json.WriteNumber(name, item)) check

let int64Value : Value<int64> = int64Number (fun _ value -> value)
let int32Value : Value<int> = int32Number checkInt
let nodeId : Value<NodeId> = int32Number checkNodeId

/// A number of a peer frame that must lie in 0..bound (docs/PROTOCOL.md, "Ranges").
let bounded (bound: int64) : Value<int64> = int64Number (checkBounded bound)

/// A number of a client frame that must be at least 1 (a `say`'s id: docs/PROTOCOL.md).
let positive : Value<int64> = int64Number checkPositive

/// An int that must lie in 0..bound.
let boundedInt32 (bound: int) : Value<int> = int32Number (fun name value -> int (checkBounded (int64 bound) name value))

let flag : Value<bool> =
    fun name ->
        { new Property<bool>(name) with
            member _.Write(json, item) = json.WriteBoolean(name.Encoded, item)
            member _.Read frame = readBool frame name
            member _.ReadValue reader =
                match reader.TokenType with
                | JsonTokenType.True -> ValueSome true
                | JsonTokenType.False -> ValueSome false
                | _ -> ValueNone }

/// A value carried as a string: `parse` says what it is, or why not.
let textAs (format: 'T -> string) (parse: Name -> string -> 'T) : Value<'T> =
    let parse = OptimizedClosures.FSharpFunc<_, _, _>.Adapt parse
    fun name ->
        { new Property<'T>(name) with
            member _.Write(json, item) = json.WriteString(name.Encoded, format item)
            member _.Read frame = parse.Invoke(name, readString frame name)
            member _.ReadValue reader =
                match stringValue &reader with
                | ValueSome text -> ValueSome(parse.Invoke(name, text))
                | ValueNone -> ValueNone }

/// Present and not null: Some; missing or null: None.
let private readOptional (inner: Fields<'T>) (frame: JsonElement) (name: Name) : 'T option =
    match tryField frame name with
    | ValueNone -> None
    | ValueSome _ -> Some(inner.Read frame)

/// An optional field: written by `writeAs`, read as Some when present and not null, else None,
/// then made a 'T by `finish`. In order, a property of another name is the next field's: this one
/// is None and the reader stays where it is.
let private optional (inner: Value<'T>) (writeAs: Fields<'T> -> Utf8JsonWriter -> Name -> 'U -> unit) (finish: 'T option -> 'U) : Value<'U> =
    let writeAs = OptimizedClosures.FSharpFunc<_, _, _, _, _>.Adapt writeAs
    fun name ->
        let inner = inner name
        // Upcast here, once: a Property given where the function takes Fields would be adapted by
        // a closure made on every call.
        let fields = inner :> Fields<'T>
        { new Property<'U>(name) with
            member _.Write(json, item) = writeAs.Invoke(fields, json, name, item)
            member _.Read frame = finish (readOptional fields frame name)
            member this.ReadInOrder reader = if atName (&reader, name) then this.ReadNamed &reader else ValueSome(finish None)
            member _.ReadValue reader =
                if reader.TokenType = JsonTokenType.Null then ValueSome(finish None)
                else
                    match inner.ReadValue &reader with
                    | ValueSome item -> ValueSome(finish (Some item))
                    | ValueNone -> ValueNone }

/// An optional value written as null when there is none.
let nullable (inner: Value<'T>) : Value<'T option> =
    optional
        inner
        (fun inner json name item ->
            match item with
            | Some item -> inner.Write(json, item)
            | None -> json.WriteNull name.Encoded)
        id

/// An optional value left out when there is none.
let omittedWhenNone (inner: Value<'T>) : Value<'T option> =
    optional inner (fun inner json _ item -> item |> Option.iter (fun item -> inner.Write(json, item))) id

/// Always written; read as `fallback` when missing or null.
let orDefault (fallback: 'T) (inner: Value<'T>) : Value<'T> =
    optional inner (fun inner json _ item -> inner.Write(json, item)) (Option.defaultValue fallback)

/// Left out when it is `fallback`, and read as `fallback` when missing or null.
let omittedAt (fallback: 'T) (inner: Value<'T>) : Value<'T> when 'T: equality =
    optional inner (fun inner json _ item -> if item <> fallback then inner.Write(json, item)) (Option.defaultValue fallback)

/// The same properties, for a type made of them and taken apart into them.
let mapFields (make: 'A -> 'B) (parts: 'B -> 'A) (fields: Fields<'A>) : Fields<'B> =
    { new Fields<'B>() with
        member _.Write(json, item) = fields.Write(json, parts item)
        member _.Read frame = make (fields.Read frame)
        member _.ReadInOrder reader =
            match fields.ReadInOrder &reader with
            | ValueSome parts -> ValueSome(make parts)
            | ValueNone -> ValueNone }

/// No properties: a case without a payload.
[<Struct>]
type NoFields = NoFields

let private noFields : Fields<NoFields> =
    { new Fields<NoFields>() with
        member _.Write(_, _) = ()
        member _.Read _ = NoFields
        member _.ReadInOrder _ = ValueSome NoFields }

// Fields are read in the order they are written, so of two bad fields the first one is named.
let fields2 (a: Fields<'A>) (b: Fields<'B>) : Fields<struct ('A * 'B)> =
    { new Fields<struct ('A * 'B)>() with
        member _.Write(json, struct (x, y)) =
            a.Write(json, x)
            b.Write(json, y)
        member _.Read frame =
            let x = a.Read frame
            struct (x, b.Read frame)
        member _.ReadInOrder reader =
            match a.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome x ->
            match b.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome y -> ValueSome(struct (x, y)) }

let fields3 (a: Fields<'A>) (b: Fields<'B>) (c: Fields<'C>) : Fields<struct ('A * 'B * 'C)> =
    { new Fields<struct ('A * 'B * 'C)>() with
        member _.Write(json, struct (x, y, z)) =
            a.Write(json, x)
            b.Write(json, y)
            c.Write(json, z)
        member _.Read frame =
            let x = a.Read frame
            let y = b.Read frame
            struct (x, y, c.Read frame)
        member _.ReadInOrder reader =
            match a.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome x ->
            match b.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome y ->
            match c.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome z -> ValueSome(struct (x, y, z)) }

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
            struct (x, y, z, d.Read frame)
        member _.ReadInOrder reader =
            match a.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome x ->
            match b.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome y ->
            match c.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome z ->
            match d.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome w -> ValueSome(struct (x, y, z, w)) }

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
            struct (x, y, z, w, e.Read frame)
        member _.ReadInOrder reader =
            match a.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome x ->
            match b.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome y ->
            match c.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome z ->
            match d.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome w ->
            match e.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome v -> ValueSome(struct (x, y, z, w, v)) }

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
            struct (x, y, z, w, v, f.Read frame)
        member _.ReadInOrder reader =
            match a.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome x ->
            match b.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome y ->
            match c.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome z ->
            match d.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome w ->
            match e.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome v ->
            match f.ReadInOrder &reader with
            | ValueNone -> ValueNone
            | ValueSome u -> ValueSome(struct (x, y, z, w, v, u)) }

// ---------------------------------------------------------------------------------------------
// Nested objects and arrays.

/// An item of an array, written and read on its own (not under a name).
[<AbstractClass>]
type Item<'T>() =
    abstract WriteItem: json: Utf8JsonWriter * item: 'T -> unit
    abstract ReadItem: token: JsonElement -> 'T
    /// The item in order, the reader standing on its first token.
    abstract ReadItemInOrder: reader: byref<Utf8JsonReader> -> 'T voption

let objectItem (fields: Fields<'T>) : Item<'T> =
    { new Item<'T>() with
        member _.WriteItem(json, item) = fields.WriteObject(json, item)
        member _.ReadItem token = if token.ValueKind = JsonValueKind.Object then fields.Read token else fail "an array item must be an object"
        member _.ReadItemInOrder reader = fields.ReadObjectInOrder &reader }

let stringItem : Item<string> =
    { new Item<string>() with
        member _.WriteItem(json, item) = json.WriteStringValue item
        member _.ReadItem token = asStringNamed "an array item must be a string" token
        member _.ReadItemInOrder reader = if reader.TokenType = JsonTokenType.String then ValueSome(stringOf &reader) else ValueNone }

/// The same item, for a type made of it and taken apart into it.
let mapItem (make: 'A -> 'B) (parts: 'B -> 'A) (item: Item<'A>) : Item<'B> =
    { new Item<'B>() with
        member _.WriteItem(json, each) = item.WriteItem(json, parts each)
        member _.ReadItem token = make (item.ReadItem token)
        member _.ReadItemInOrder reader =
            match item.ReadItemInOrder &reader with
            | ValueSome each -> ValueSome(make each)
            | ValueNone -> ValueNone }

/// An object nested under a name.
let objectOf (fields: Fields<'T>) : Value<'T> =
    fun name ->
        { new Property<'T>(name) with
            member _.Write(json, item) =
                json.WritePropertyName name.Encoded
                fields.WriteObject(json, item)
            member _.Read frame = fields.Read(readObject frame name)
            member _.ReadValue reader = fields.ReadObjectInOrder &reader }

let listOf (item: Item<'T>) : Value<'T list> =
    fun name ->
        { new Property<'T list>(name) with
            member _.Write(json, items) =
                json.WritePropertyName name.Encoded
                json.WriteStartArray()
                for each in items do item.WriteItem(json, each)
                json.WriteEndArray()
            member _.Read frame = readArray frame name |> List.map item.ReadItem
            member _.ReadValue reader =
                if reader.TokenType <> JsonTokenType.StartArray then ValueNone
                else
                    let mutable items = CompilerServices.ListCollector<'T>()
                    let mutable inOrder = true
                    while inOrder && reader.Read() && reader.TokenType <> JsonTokenType.EndArray do
                        match item.ReadItemInOrder &reader with
                        | ValueSome each -> items.Add each
                        | ValueNone -> inOrder <- false
                    // The loop also ends when the data does: only an EndArray closes the list.
                    if inOrder && reader.TokenType = JsonTokenType.EndArray then ValueSome(items.Close()) else ValueNone }

// ---------------------------------------------------------------------------------------------
// A union's table: one case per union case, each its "type" tag and its fields.

[<AbstractClass>]
type Case<'Union>(tag: string) =
    let utf8Tag = Text.Encoding.UTF8.GetBytes tag
    member _.Tag = tag
    member _.Utf8Tag : ReadOnlySpan<byte> = ReadOnlySpan utf8Tag
    /// Writes the "type" and the fields; false when the value is another case.
    abstract TryWrite: json: Utf8JsonWriter * value: 'Union -> bool
    abstract Read: frame: JsonElement -> 'Union
    abstract ReadInOrder: reader: byref<Utf8JsonReader> -> 'Union voption

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
        member _.Read frame = make (fields.Read frame)
        member _.ReadInOrder reader =
            match fields.ReadInOrder &reader with
            | ValueSome payload -> ValueSome(make payload)
            | ValueNone -> ValueNone }

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

/// In order, the reader standing on the "type" string: the case it names, and its fields; the
/// reader is left on the token after them.
let readInOrder (table: Table<'Union>) (reader: byref<Utf8JsonReader>) : 'Union voption =
    let cases = table.ByPosition
    let mutable index = 0
    while index < cases.Length && not (textIs (&reader, cases.[index].Utf8Tag)) do
        index <- index + 1
    if index = cases.Length || not (reader.Read()) then ValueNone else cases.[index].ReadInOrder &reader
